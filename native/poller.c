/* FdPoller: a libuv uv_poll_t on the environment's (main) loop, and the
 * per-environment state that tracks open pollers. */
#include "shim.h"

#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/*
 * Lifetime
 *  - The JS object wraps a poller_t. `self` is a weak reference while the
 *    poller is stopped or closed and a strong one while it is started, so an
 *    active poller cannot be collected but a stopped/closed one can.
 *  - The callback is stored as a read-only, non-enumerable own property
 *    "callback" of the JS object (so it lives exactly as long as the object,
 *    and a closure over the poller forms no uncollectable cycle); `callback`
 *    is a weak reference used for fast access.
 *  - poller_t is freed once both the uv close callback has run (`closed`)
 *    and the JS object has been finalized (`finalized`). The finalizer
 *    starts uv_close itself if close() was never called.
 *  - The async context is destroyed in the finalizer only, never while a
 *    callback may still be running on it.
 *  - Every poller whose uv handle is not yet closed is linked into the
 *    per-environment addon_state_t. closeFd() uses the list to refuse to
 *    close a descriptor libuv is watching, and an async cleanup hook uses it
 *    at environment teardown (process exit, worker exit) to close all
 *    handles and wait for their close callbacks: Node unloads the addon
 *    afterwards, so no callback into this file may remain queued in libuv.
 */
typedef struct poller_s poller_t;

typedef struct {
  poller_t *open; /* doubly-linked list of pollers with an unclosed handle */
  napi_async_cleanup_hook_handle hook;
  bool tearing_down;
} addon_state_t;

struct poller_s {
  uv_poll_t handle; /* handle.data points back here */
  napi_env env;
  napi_ref self;
  napi_ref callback;
  napi_async_context ctx;
  addon_state_t *state;  /* set while linked into state->open */
  poller_t *prev, *next; /* links in state->open */
  int fd;
  bool drain; /* eventfd mode: read the counter here, pass it to JS */
  bool started;
  bool closing;
  bool closed;
  bool finalized;
};

static const napi_type_tag POLLER_TAG = {0x2d7be1c94f0a6358ULL, 0xc51e8a3f7609b4d2ULL};

static void poller_link(addon_state_t *state, poller_t *p) {
  p->state = state;
  p->prev = NULL;
  p->next = state->open;
  if (p->next != NULL) p->next->prev = p;
  state->open = p;
}

static void poller_unlink(poller_t *p) {
  if (p->state == NULL) return;
  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    p->state->open = p->next;
  if (p->next != NULL) p->next->prev = p->prev;
  p->prev = p->next = NULL;
  p->state = NULL;
}

/* Called once every handle is closed during teardown. */
static void state_teardown_done(addon_state_t *state) {
  napi_remove_async_cleanup_hook(state->hook);
  free(state);
}

static void poller_on_close(uv_handle_t *h) {
  poller_t *p = h->data;
  addon_state_t *state = p->state;
  poller_unlink(p);
  p->closed = true;
  if (state != NULL && state->tearing_down && state->open == NULL) state_teardown_done(state);
  if (p->finalized) free(p);
}

/* Environment teardown: no JS runs any more. Close every open handle (no
 * N-API calls here: finalizers clean up references later) and finish once
 * the last close callback has run. */
static void state_cleanup_hook(napi_async_cleanup_hook_handle handle, void *data) {
  addon_state_t *state = data;
  poller_t *p;
  (void)handle;
  eventfd_guard_release();
  state->tearing_down = true;
  for (p = state->open; p != NULL; p = p->next) {
    p->started = false;
    if (!p->closing) {
      p->closing = true;
      uv_close((uv_handle_t *)&p->handle, poller_on_close);
    }
  }
  if (state->open == NULL) state_teardown_done(state);
}

bool fd_is_polled(napi_env env, int fd) {
  void *data = NULL;
  poller_t *p;
  if (napi_get_instance_data(env, &data) != napi_ok || data == NULL) return false;
  for (p = ((addon_state_t *)data)->open; p != NULL; p = p->next)
    if (p->started && p->fd == fd) return true;
  return false;
}

static void poller_mark_stopped(napi_env env, poller_t *p) {
  if (p->started) {
    p->started = false;
    napi_reference_unref(env, p->self, NULL);
  }
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  poller_t *p = data;
  (void)hint;
  p->finalized = true;
  p->started = false; /* only possible at teardown: started pollers are strongly held */
  if (p->self != NULL) napi_delete_reference(env, p->self);
  if (p->callback != NULL) napi_delete_reference(env, p->callback);
  if (p->ctx != NULL) napi_async_destroy(env, p->ctx);
  p->self = p->callback = NULL;
  p->ctx = NULL;
  if (!p->closing) {
    p->closing = true;
    uv_close((uv_handle_t *)&p->handle, poller_on_close);
  } else if (p->closed) {
    free(p);
  }
  /* else: uv_close is in flight and poller_on_close frees p. */
}

static void poller_on_poll(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value self = NULL, cb = NULL, argv[4], result;
  napi_status st;
  uint64_t count = 0;
  int read_error = 0;

  if (!p->started || p->closing) return;
  if (p->drain && status >= 0 && (events & UV_READABLE)) {
    /* One never-blocking read; a wake-up with nothing to read (the peer
     * drained it first) costs no call into JS at all. */
    ssize_t n = eventfd_read_nowait(p->fd, &count);
    if (n < 0 && is_eagain(errno)) return;
    if (n < 0) read_error = errno;
    else if (n != (ssize_t)sizeof count) read_error = EIO;
  }
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, p->self, &self) != napi_ok || self == NULL ||
      napi_get_reference_value(env, p->callback, &cb) != napi_ok || cb == NULL)
    goto out;
  if (status < 0) {
    /* libuv has already stopped the handle (e.g. POLLERR -> UV_EBADF). */
    poller_mark_stopped(env, p);
    argv[0] = make_errno_error(env, "uv_poll", -status);
    events = 0;
  } else if (read_error != 0) {
    /* Not a readable eventfd: stop, or it would wake us forever. */
    uv_poll_stop(&p->handle);
    poller_mark_stopped(env, p);
    argv[0] = make_errno_error(env, "read", read_error);
    events = 0;
  } else {
    argv[0] = get_null(env);
  }
  if (argv[0] == NULL || napi_get_boolean(env, (events & UV_READABLE) != 0, &argv[1]) != napi_ok ||
      napi_get_boolean(env, (events & UV_WRITABLE) != 0, &argv[2]) != napi_ok)
    goto out;
  if (!p->drain || read_error != 0 || status < 0 ? napi_get_undefined(env, &argv[3]) != napi_ok
                                                 : napi_create_bigint_uint64(env, count, &argv[3]) != napi_ok)
    goto out;
  st = napi_make_callback(env, p->ctx, self, cb, 4, argv, &result);
  if (st == napi_pending_exception) {
    /* No JS frame below us can catch it: route to 'uncaughtException'. */
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
  /* Do not touch `p` after the callback except through the handle scope:
   * it stays allocated (the JS object is alive in this scope), but its state
   * may have changed (stop/close from inside the callback). */
out:
  napi_close_handle_scope(env, scope);
}

/* Returns the poller for `this`, or NULL with a pending TypeError. */
static poller_t *poller_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  bool tagged = false;
  void *p = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) {
    throw_napi_failure(env, "napi_get_cb_info");
    return NULL;
  }
  if (napi_check_object_type_tag(env, self, &POLLER_TAG, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, self, &p) != napi_ok || p == NULL) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
      napi_throw_type_error(env, "ERR_INVALID_THIS", "Value of \"this\" must be of type FdPoller");
    return NULL;
  }
  return p;
}

/* new FdPoller(fd: number, callback: (err, readable, writable, count?) => void,
 *             options?: { drainEventfd?: boolean }) */
static napi_value poller_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self, new_target, name;
  napi_valuetype t;
  int32_t fd;
  bool drain = false;
  uv_loop_t *loop = NULL;
  void *state = NULL;
  poller_t *p;
  int r;
  napi_property_descriptor desc;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (new_target == NULL) {
    napi_throw_type_error(env, "ERR_CONSTRUCT_CALL_REQUIRED", "Class constructor FdPoller cannot be invoked without 'new'");
    return NULL;
  }
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t != napi_function) return throw_type(env, "callback", "of type function");
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  if (t == napi_object) {
    napi_value v;
    NAPI_CALL(env, napi_get_named_property(env, argv[2], "drainEventfd", &v));
    if (!arg_bool(env, v, "options.drainEventfd", false, &drain)) return NULL;
  } else if (t != napi_undefined) {
    return throw_type(env, "options", "of type object");
  }
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  NAPI_CALL(env, napi_get_instance_data(env, &state));
  if (state == NULL) return throw_napi_failure(env, "napi_get_instance_data");
  p = calloc(1, sizeof *p);
  if (p == NULL) return throw_errno(env, "uv_poll_init", ENOMEM);
  p->env = env;
  p->fd = fd;
  p->drain = drain;
  /* Note: uv_poll_init puts the fd into non-blocking mode. */
  r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    return throw_errno(env, "uv_poll_init", -r);
  }
  p->handle.data = p;
  poller_link(state, p);
  if (napi_wrap(env, self, p, poller_finalize, NULL, NULL) != napi_ok) {
    p->finalized = true; /* no finalizer will run: let the close callback free p */
    p->closing = true;
    uv_close((uv_handle_t *)&p->handle, poller_on_close);
    return throw_napi_failure(env, "napi_wrap");
  }
  /* From here on poller_finalize owns p; it copes with NULL refs/ctx. */
  NAPI_CALL(env, napi_type_tag_object(env, self, &POLLER_TAG));
  memset(&desc, 0, sizeof desc);
  desc.utf8name = "callback";
  desc.value = argv[1];
  desc.attributes = napi_default; /* read-only, non-enumerable, non-configurable */
  NAPI_CALL(env, napi_define_properties(env, self, 1, &desc));
  NAPI_CALL(env, napi_create_reference(env, argv[1], 0, &p->callback));
  NAPI_CALL(env, napi_create_reference(env, self, 0, &p->self));
  NAPI_CALL(env, napi_create_string_utf8(env, "vgpio.FdPoller", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_async_init(env, NULL, name, &p->ctx));
  return NULL;
}

/* start(readable = true, writable = false): void. start(false, false) stops. */
static napi_value poller_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool readable, writable;
  int events = 0, r;
  poller_t *p = poller_unwrap(env, info, &argc, argv);
  if (p == NULL) return NULL;
  if (!arg_bool(env, argv[0], "readable", true, &readable)) return NULL;
  if (!arg_bool(env, argv[1], "writable", false, &writable)) return NULL;
  if (p->closing) {
    napi_throw_error(env, "ERR_POLLER_CLOSED", "FdPoller is closed");
    return NULL;
  }
  /* libuv abort()s if epoll_ctl later fails on a closed descriptor; catch
   * the common mistake (fd closed before the poller) here instead. */
  if (fcntl(p->fd, F_GETFD) < 0) return throw_errno(env, "fcntl", errno);
  if (readable) events |= UV_READABLE;
  if (writable) events |= UV_WRITABLE;
  r = uv_poll_start(&p->handle, events, poller_on_poll);
  if (r < 0) return throw_errno(env, "uv_poll_start", -r);
  if (events == 0) {
    poller_mark_stopped(env, p);
  } else if (!p->started) {
    if (napi_reference_ref(env, p->self, NULL) != napi_ok) {
      uv_poll_stop(&p->handle);
      return throw_napi_failure(env, "napi_reference_ref");
    }
    p->started = true;
  }
  return NULL;
}

/* stop(): void (no-op when stopped or closed) */
static napi_value poller_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = poller_unwrap(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  if (p->closing) return NULL;
  uv_poll_stop(&p->handle);
  poller_mark_stopped(env, p);
  return NULL;
}

/* close(): void (idempotent). No callback runs after close() returns. */
static napi_value poller_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = poller_unwrap(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  if (p->closing) return NULL;
  poller_mark_stopped(env, p);
  p->closing = true;
  uv_close((uv_handle_t *)&p->handle, poller_on_close);
  return NULL;
}

static napi_value poller_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = poller_unwrap(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  if (!p->closing) uv_ref((uv_handle_t *)&p->handle);
  return NULL;
}

static napi_value poller_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = poller_unwrap(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  if (!p->closing) uv_unref((uv_handle_t *)&p->handle);
  return NULL;
}

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default_method, NULL}

bool poller_init(napi_env env, napi_value exports) {
  napi_value cls;
  addon_state_t *state;
  napi_property_descriptor props[] = {
      METHOD("start", poller_start), METHOD("stop", poller_stop), METHOD("close", poller_close),
      METHOD("ref", poller_ref),     METHOD("unref", poller_unref),
  };
  /* The state is freed by the async cleanup hook at environment teardown
   * (after all handles are closed), not by an instance-data finalizer. */
  state = calloc(1, sizeof *state);
  if (state == NULL) return throw_errno(env, "calloc", ENOMEM), false;
  if (napi_add_async_cleanup_hook(env, state_cleanup_hook, state, &state->hook) != napi_ok) {
    free(state);
    return throw_napi_failure(env, "napi_add_async_cleanup_hook"), false;
  }
  if (napi_set_instance_data(env, state, NULL, NULL) != napi_ok ||
      napi_define_class(env, "FdPoller", NAPI_AUTO_LENGTH, poller_new, NULL, sizeof props / sizeof props[0],
                        props, &cls) != napi_ok ||
      napi_set_named_property(env, exports, "FdPoller", cls) != napi_ok)
    return throw_napi_failure(env, "FdPoller class"), false;
  return true;
}
