/*
 * vgpio_native: a thin Linux OS shim for vgpio, written against node_api.h
 * (NAPI_VERSION 8). All protocol logic lives in TypeScript; this file only
 * wraps system calls, mmap'd memory and a libuv poll handle.
 *
 * Conventions
 *  - Every failing system call throws an Error with
 *      code    = errno name ("ENOENT", from strerrorname_np),
 *      errno   = the positive errno number,
 *      syscall = the call name,
 *      message = "<syscall>: <code> (<description>)".
 *  - Bad argument types throw TypeError (code ERR_INVALID_ARG_TYPE), bad
 *    argument ranges RangeError (code ERR_OUT_OF_RANGE).
 *  - "null on EAGAIN" functions return null for EAGAIN/EWOULDBLOCK.
 *  - All file descriptors are created close-on-exec. EINTR is retried, except
 *    for close(), where Linux has already released the descriptor.
 *  - Everything runs on the JS thread; the libuv threadpool is never used.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif

#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SEND_FDS 32      /* limit for sendMsg (and default for recvMsg) */
#define MAX_RECV_FDS 253     /* SCM_MAX_FD: the kernel never passes more */
#define MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1 */
/* Node 20 cannot create an ArrayBuffer over external memory larger than
 * v8::TypedArray::kMaxLength (2^32 on 64-bit). */
#define MAX_MAPPING_LENGTH 4294967296.0

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Builds an Error with code/errno/syscall properties; NULL if that failed. */
static napi_value make_error(napi_env env, const char *code, int err, const char *syscall,
                             const char *detail) {
  char msg[256];
  napi_value code_v, msg_v, error, errno_v, syscall_v;
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall, code, detail);
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok ||
      napi_create_error(env, code_v, msg_v, &error) != napi_ok ||
      napi_create_int32(env, err, &errno_v) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_v) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v) != napi_ok ||
      napi_set_named_property(env, error, "syscall", syscall_v) != napi_ok)
    return NULL;
  return error;
}

static napi_value make_errno_error(napi_env env, const char *syscall, int err) {
  const char *name = strerrorname_np(err);
  const char *desc = strerrordesc_np(err);
  char unknown[48];
  if (name == NULL) name = "UNKNOWN";
  if (desc == NULL) {
    snprintf(unknown, sizeof unknown, "Unknown error %d", err);
    desc = unknown;
  }
  return make_error(env, name, err, syscall, desc);
}

/* Throws `error` if non-NULL, otherwise a generic Error (unless something is
 * already pending). Always returns NULL so callers can `return throw_...`. */
static napi_value throw_value(napi_env env, napi_value error, const char *fallback) {
  bool pending = false;
  if (error != NULL) {
    napi_throw(env, error);
  } else if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
    napi_throw_error(env, NULL, fallback);
  }
  return NULL;
}

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  return throw_value(env, make_errno_error(env, syscall, err), syscall);
}

/* Custom (non-kernel) condition reported in the same shape as throw_errno. */
static napi_value throw_custom(napi_env env, const char *code, int err, const char *syscall,
                               const char *detail) {
  return throw_value(env, make_error(env, code, err, syscall, detail), detail);
}

static napi_value close_and_throw(napi_env env, int fd, const char *syscall, int err) {
  close(fd);
  return throw_errno(env, syscall, err);
}

/* A node_api call itself failed (out of memory, pending exception, ...). */
static napi_value throw_napi_failure(napi_env env, const char *what) {
  const napi_extended_error_info *info = NULL;
  char msg[256];
  bool pending = false;
  napi_get_last_error_info(env, &info);
  snprintf(msg, sizeof msg, "%s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown N-API error");
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_error(env, "ERR_NAPI", msg);
  return NULL;
}

#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) return throw_napi_failure((env), #call);            \
  } while (0)

static napi_value throw_type(napi_env env, const char *name, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *name, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "The value of \"%s\" is out of range. It must be %s", name, expected);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Argument helpers: return false with a pending exception on failure.      */
/* ------------------------------------------------------------------------ */

static bool is_undefined(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_undefined;
}

static bool arg_int32(napi_env env, napi_value v, const char *name, int32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_type(env, name, "of type number");
    return false;
  }
  if (!(d >= INT32_MIN && d <= INT32_MAX) || d != trunc(d)) {
    throw_range(env, name, "an integer in the int32 range");
    return false;
  }
  *out = (int32_t)d;
  return true;
}

/* Non-negative integer <= max (max <= 2^53 - 1). */
static bool arg_uint(napi_env env, napi_value v, const char *name, double max, uint64_t *out) {
  double d;
  char expected[96];
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_type(env, name, "of type number");
    return false;
  }
  if (!(d >= 0 && d <= max) || d != trunc(d)) {
    snprintf(expected, sizeof expected, "an integer >= 0 and <= %.0f", max);
    throw_range(env, name, expected);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

static bool arg_bool(napi_env env, napi_value v, const char *name, bool dflt, bool *out) {
  if (is_undefined(env, v)) {
    *out = dflt;
    return true;
  }
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    throw_type(env, name, "of type boolean");
    return false;
  }
  return true;
}

static size_t typedarray_element_size(napi_typedarray_type t) {
  switch (t) {
  case napi_int8_array:
  case napi_uint8_array:
  case napi_uint8_clamped_array:
    return 1;
  case napi_int16_array:
  case napi_uint16_array:
    return 2;
  case napi_int32_array:
  case napi_uint32_array:
  case napi_float32_array:
    return 4;
  default: /* float64, bigint64, biguint64 */
    return 8;
  }
}

/* Any ArrayBufferView (Uint8Array, Buffer, other TypedArrays, DataView).
 * The pointer stays valid for the duration of the current native call. */
static bool arg_bytes(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  size_t n = 0;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    if (napi_get_typedarray_info(env, v, &type, &n, data, NULL, NULL) != napi_ok) {
      throw_napi_failure(env, "napi_get_typedarray_info");
      return false;
    }
    *len = n * typedarray_element_size(type);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, len, data, NULL, NULL) != napi_ok) {
      throw_napi_failure(env, "napi_get_dataview_info");
      return false;
    }
    return true;
  }
  throw_type(env, name, "a Uint8Array (or other ArrayBufferView)");
  return false;
}

/* Fills `sa` from a JS string. Returns 0 on success, a positive errno for an
 * unusable path, or -1 with a pending exception. A leading NUL character
 * selects the Linux abstract namespace. */
static int arg_sockaddr(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *salen) {
  size_t len = 0, copied = 0;
  char buf[sizeof sa->sun_path];
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    throw_type(env, "path", "of type string");
    return -1;
  }
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (len == 0) return EINVAL;
  /* Pathname sockets need room for the terminating NUL (max 107 bytes). */
  if (len >= sizeof sa->sun_path) return ENAMETOOLONG;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &copied) != napi_ok) {
    throw_napi_failure(env, "napi_get_value_string_utf8");
    return -1;
  }
  memcpy(sa->sun_path, buf, copied);
  if (sa->sun_path[0] == '\0') {
    *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + copied);
  } else {
    if (memchr(sa->sun_path, '\0', copied) != NULL) return EINVAL;
    *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + copied + 1);
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Result helpers                                                           */
/* ------------------------------------------------------------------------ */

static napi_value get_null(napi_env env) {
  napi_value v = NULL;
  napi_get_null(env, &v);
  return v;
}

static napi_value make_number(napi_env env, double d) {
  napi_value v;
  NAPI_CALL(env, napi_create_double(env, d, &v));
  return v;
}

/* Returns a freshly created fd to JS; closes it if that fails. */
static napi_value return_fd(napi_env env, int fd) {
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) {
    close(fd);
    return throw_napi_failure(env, "napi_create_int32");
  }
  return v;
}

static bool is_eagain(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

/* socketListen(path: string, backlog: number): number */
static napi_value js_socket_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct sockaddr_un sa;
  socklen_t salen = 0;
  int32_t backlog;
  int r, fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  r = arg_sockaddr(env, argv[0], &sa, &salen);
  if (r < 0) return NULL;
  if (!arg_int32(env, argv[1], "backlog", &backlog)) return NULL;
  if (r > 0) return throw_errno(env, "bind", r);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&sa, salen) < 0) return close_and_throw(env, fd, "bind", errno);
  if (listen(fd, backlog) < 0) return close_and_throw(env, fd, "listen", errno);
  return return_fd(env, fd);
}

/* socketAccept(fd: number): number | null */
static napi_value js_socket_accept(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  int conn;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  do conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (conn < 0 && errno == EINTR);
  if (conn < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "accept4", errno);
  return return_fd(env, conn);
}

/* socketConnect(path: string): number. The connect itself is blocking (it
 * only waits while the listener's backlog is full), then O_NONBLOCK is set. */
static napi_value js_socket_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un sa;
  socklen_t salen = 0;
  int r, fd, flags;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  r = arg_sockaddr(env, argv[0], &sa, &salen);
  if (r < 0) return NULL;
  if (r > 0) return throw_errno(env, "connect", r);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  /* An interrupted AF_UNIX connect leaves the socket unconnected: retry. */
  do r = connect(fd, (struct sockaddr *)&sa, salen);
  while (r < 0 && errno == EINTR);
  if (r < 0) return close_and_throw(env, fd, "connect", errno);
  flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return close_and_throw(env, fd, "fcntl", errno);
  return return_fd(env, fd);
}

/* socketPair(): [number, number] */
static napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  int sv[2];
  napi_value arr, a, b;
  (void)info;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    return throw_errno(env, "socketpair", errno);
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_create_int32(env, sv[0], &a) != napi_ok || napi_create_int32(env, sv[1], &b) != napi_ok ||
      napi_set_element(env, arr, 0, a) != napi_ok || napi_set_element(env, arr, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    return throw_napi_failure(env, "socketPair result");
  }
  return arr;
}

/* peerCredentials(fd: number): { pid, uid, gid } (SO_PEERCRED: the peer's
 * credentials as of connect/socketpair time) */
static napi_value js_peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, pid_v, uid_v, gid_v;
  int32_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, "getsockopt", errno);
  NAPI_CALL(env, napi_create_int32(env, cred.pid, &pid_v));
  NAPI_CALL(env, napi_create_uint32(env, cred.uid, &uid_v));
  NAPI_CALL(env, napi_create_uint32(env, cred.gid, &gid_v));
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_set_named_property(env, result, "pid", pid_v));
  NAPI_CALL(env, napi_set_named_property(env, result, "uid", uid_v));
  NAPI_CALL(env, napi_set_named_property(env, result, "gid", gid_v));
  return result;
}

/* sendMsg(fd: number, data: Uint8Array, fds?: number[]): number | null */
static napi_value js_send_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  void *data = NULL;
  size_t len = 0;
  int fds[MAX_SEND_FDS];
  uint32_t nfds = 0, i;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
  } control;
  struct iovec iov;
  struct msghdr msg;
  ssize_t n;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_bytes(env, argv[1], "data", &data, &len)) return NULL;
  if (!is_undefined(env, argv[2])) {
    bool is_array = false;
    NAPI_CALL(env, napi_is_array(env, argv[2], &is_array));
    if (!is_array) return throw_type(env, "fds", "an array of numbers");
    NAPI_CALL(env, napi_get_array_length(env, argv[2], &nfds));
    if (nfds > MAX_SEND_FDS) return throw_range(env, "fds.length", "<= 32");
    for (i = 0; i < nfds; i++) {
      napi_value el;
      int32_t v;
      NAPI_CALL(env, napi_get_element(env, argv[2], i, &el));
      if (!arg_int32(env, el, "fds[i]", &v)) return NULL;
      fds[i] = v;
    }
  }
  /* On a stream socket, ancillary data rides on the data bytes; with zero
   * bytes the kernel would silently drop the descriptors. */
  if (nfds > 0 && len == 0) return throw_range(env, "data.byteLength", ">= 1 when sending fds");

  memset(&msg, 0, sizeof msg);
  iov.iov_base = data;
  iov.iov_len = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    struct cmsghdr *cmsg;
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "sendmsg", errno);
  return make_number(env, (double)n);
}

static void close_fds(const int *fds, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) close(fds[i]);
}

/* recvMsg(fd: number, maxBytes: number, maxFds = 32):
 *   { data: Buffer; fds: number[]; truncated: boolean } | null */
static napi_value js_recv_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  uint64_t max_bytes, max_fds = MAX_SEND_FDS;
  void *buf;
  int fds[MAX_RECV_FDS];
  size_t nfds = 0, i;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_RECV_FDS)];
  } control;
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *cmsg;
  ssize_t n;
  bool truncated;
  napi_value result, data_v, fds_v, trunc_v, el;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_uint(env, argv[1], "maxBytes", INT32_MAX, &max_bytes)) return NULL;
  if (max_bytes == 0) return throw_range(env, "maxBytes", ">= 1");
  if (!is_undefined(env, argv[2]) && !arg_uint(env, argv[2], "maxFds", MAX_RECV_FDS, &max_fds))
    return NULL;

  buf = malloc(max_bytes);
  if (buf == NULL) return throw_errno(env, "recvmsg", ENOMEM);
  memset(&msg, 0, sizeof msg);
  iov.iov_base = buf;
  iov.iov_len = max_bytes;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (max_fds > 0) {
    msg.msg_control = control.buf;
    /* CMSG_LEN, not CMSG_SPACE: the kernel installs
     * (controllen - sizeof(cmsghdr)) / sizeof(int) descriptors, so padding
     * would let it deliver more than max_fds. */
    msg.msg_controllen = CMSG_LEN(sizeof(int) * max_fds);
  }
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    free(buf);
    return is_eagain(err) ? get_null(env) : throw_errno(env, "recvmsg", err);
  }

  if (msg.msg_controllen > 0) {
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      size_t count;
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
      count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (i = 0; i < count; i++) {
        int rfd;
        memcpy(&rfd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
        if (nfds < MAX_RECV_FDS)
          fds[nfds++] = rfd;
        else
          close(rfd); /* cannot happen: the control buffer bounds the count */
      }
    }
  }
  truncated = (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;

  if (napi_create_buffer_copy(env, (size_t)n, buf, NULL, &data_v) != napi_ok) {
    free(buf);
    close_fds(fds, nfds);
    return throw_napi_failure(env, "napi_create_buffer_copy");
  }
  free(buf);
  if (napi_create_array_with_length(env, nfds, &fds_v) != napi_ok) goto fail;
  for (i = 0; i < nfds; i++) {
    if (napi_create_int32(env, fds[i], &el) != napi_ok || napi_set_element(env, fds_v, (uint32_t)i, el) != napi_ok)
      goto fail;
  }
  if (napi_get_boolean(env, truncated, &trunc_v) != napi_ok || napi_create_object(env, &result) != napi_ok ||
      napi_set_named_property(env, result, "data", data_v) != napi_ok ||
      napi_set_named_property(env, result, "fds", fds_v) != napi_ok ||
      napi_set_named_property(env, result, "truncated", trunc_v) != napi_ok)
    goto fail;
  return result;

fail:
  close_fds(fds, nfds);
  return throw_napi_failure(env, "recvMsg result");
}

/* ------------------------------------------------------------------------ */
/* Plain fd operations                                                      */
/* ------------------------------------------------------------------------ */

static bool fd_is_polled(napi_env env, int fd); /* see FdPoller below */

/* readFd(fd: number, maxBytes: number): Buffer | null */
static napi_value js_read_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  uint64_t max_bytes;
  void *buf;
  ssize_t n;
  napi_status st;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_uint(env, argv[1], "maxBytes", INT32_MAX, &max_bytes)) return NULL;
  if (max_bytes == 0) return throw_range(env, "maxBytes", ">= 1");
  buf = malloc(max_bytes);
  if (buf == NULL) return throw_errno(env, "read", ENOMEM);
  do n = read(fd, buf, max_bytes);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    free(buf);
    return is_eagain(err) ? get_null(env) : throw_errno(env, "read", err);
  }
  st = napi_create_buffer_copy(env, (size_t)n, buf, NULL, &result);
  free(buf);
  if (st != napi_ok) return throw_napi_failure(env, "napi_create_buffer_copy");
  return result;
}

/* writeFd(fd: number, data: Uint8Array): number | null */
static napi_value js_write_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data = NULL;
  size_t len = 0;
  ssize_t n;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_bytes(env, argv[1], "data", &data, &len)) return NULL;
  do n = write(fd, data, len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "write", errno);
  return make_number(env, (double)n);
}

/* closeFd(fd: number): void */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  /* libuv keeps its watcher for a polled fd *number*: closing the fd under a
   * started poller would misroute events of whatever reuses that number. */
  if (fd_is_polled(env, fd))
    return throw_custom(env, "EBUSY", EBUSY, "close",
                        "fd is watched by a started FdPoller; stop() or close() it first");
  /* On Linux the descriptor is released even if close() reports EINTR;
   * retrying could close an unrelated, newly opened descriptor. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

/* setNonBlocking(fd: number, on: boolean): void */
static napi_value js_set_non_blocking(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  bool on;
  int flags, wanted;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (is_undefined(env, argv[1])) return throw_type(env, "on", "of type boolean");
  if (!arg_bool(env, argv[1], "on", true, &on)) return NULL;
  flags = fcntl(fd, F_GETFL);
  if (flags < 0) return throw_errno(env, "fcntl", errno);
  wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && fcntl(fd, F_SETFL, wanted) < 0) return throw_errno(env, "fcntl", errno);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* eventfd                                                                  */
/* ------------------------------------------------------------------------ */

/* eventfd(initval: number, nonblock = true, semaphore = false): number */
static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint64_t initval;
  bool nonblock, semaphore;
  int fd, flags = EFD_CLOEXEC;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_uint(env, argv[0], "initval", UINT32_MAX, &initval)) return NULL;
  if (!arg_bool(env, argv[1], "nonblock", true, &nonblock)) return NULL;
  if (!arg_bool(env, argv[2], "semaphore", false, &semaphore)) return NULL;
  if (nonblock) flags |= EFD_NONBLOCK;
  if (semaphore) flags |= EFD_SEMAPHORE;
  fd = eventfd((unsigned int)initval, flags);
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return return_fd(env, fd);
}

/*
 * Eventfd I/O that never blocks the calling thread, whatever the O_NONBLOCK
 * flag of the fd says. O_NONBLOCK lives in the open file description, which a
 * vhost-user front-end shares with us: it can clear the flag at any moment,
 * and drain or saturate the counter between any readiness check and our
 * syscall. A private open file description is not to be had: opening
 * /proc/self/fd/N of an eventfd fails with ENXIO (anon inode).
 *
 *  - Read: preadv2(RWF_NOWAIT). eventfd's read_iter honours IOCB_NOWAIT under
 *    the counter's lock (Linux >= 5.12 sets FMODE_NOWAIT on eventfds), so the
 *    kernel itself returns EAGAIN on an empty counter: one syscall, no race.
 *    A kernel (or fd kind) without it answers EOPNOTSUPP: then the write path's
 *    guard is used.
 *  - Write: eventfd's write has no NOWAIT variant (pwritev2(RWF_NOWAIT) gives
 *    EOPNOTSUPP). poll(POLLOUT, 0) answers the common case (saturated counter:
 *    false at once); the race after it is closed by a guard: a POSIX timer
 *    directed at this thread (SIGEV_THREAD_ID) fires GUARD_SIGNAL every
 *    GUARD_NS while the write runs. The handler does nothing and is installed
 *    without SA_RESTART, so a write that went to sleep returns EINTR, which we
 *    report as "would block". The timer is periodic so that an expiry that
 *    fell before the syscall was entered (preemption) cannot leave it
 *    unguarded; a signal handled outside the sleep changes nothing, since only
 *    an interruptible sleep returns EINTR. The timer is disarmed before
 *    returning, so no other syscall of the thread ever sees the signal.
 *  - Cost: four syscalls (poll, 2x timer_settime, write) instead of one,
 *    about +2.5 us per write on the 2-core VM this was measured on; the worst
 *    case wait (a peer that wins the race) is GUARD_NS, 2x GUARD_NS if the
 *    thread was preempted right at the first expiry.
 */
/* 5 ms: a shorter first expiry makes arming dearer (the hrtimer then becomes
 * the CPU's next timer event, which re-programs the clock device): measured
 * here, arm + disarm costs 1.5 us at 5 ms, 2.6 us at 2 ms, 13 us at 200 us. */
#define GUARD_NS 5000000L
static int guard_signal(void) { return SIGRTMAX - 1; }
static void guard_on_signal(int sig) { (void)sig; }

/* One timer per thread (each Node environment runs on its own thread). */
static __thread timer_t guard_timer;
static __thread bool guard_timer_ready;

/* Returns 0 or an errno. */
static int guard_setup(void) {
  static bool handler_installed = false; /* all environments share one process */
  struct sigevent sev;
  sigset_t set;
  if (!handler_installed) {
    struct sigaction sa, old;
    if (sigaction(guard_signal(), NULL, &old) < 0) return errno;
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_handler != guard_on_signal)
      return EBUSY; /* someone else uses the signal: do not steal it */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = guard_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the blocked syscall must return EINTR */
    if (sigaction(guard_signal(), &sa, NULL) < 0) return errno;
    handler_installed = true;
  }
  if (guard_timer_ready) return 0;
  sigemptyset(&set);
  sigaddset(&set, guard_signal());
  if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0) return EINVAL;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = guard_signal();
  sev._sigev_un._tid = gettid();
  if (timer_create(CLOCK_MONOTONIC, &sev, &guard_timer) < 0) return errno;
  guard_timer_ready = true;
  return 0;
}

static void guard_release(void) {
  if (guard_timer_ready) timer_delete(guard_timer);
  guard_timer_ready = false;
}

static int guard_arm(long ns) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_nsec = ns;
  its.it_interval.tv_nsec = ns;
  return timer_settime(guard_timer, 0, &its, NULL);
}

/* read/write of 8 bytes that returns -1 with errno EAGAIN instead of
 * sleeping: poll for `events`, then the syscall under the guard. */
static ssize_t guarded_io(int fd, uint64_t *value, short events) {
  struct pollfd pfd = {fd, events, 0};
  ssize_t n;
  int r, err;
  do r = poll(&pfd, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -1;
  if (pfd.revents & POLLNVAL) {
    errno = EBADF;
    return -1;
  }
  if (!(pfd.revents & events)) {
    errno = EAGAIN;
    return -1;
  }
  r = guard_setup();
  if (r != 0) {
    errno = r;
    return -1;
  }
  if (guard_arm(GUARD_NS) < 0) return -1;
  n = events == POLLIN ? read(fd, value, sizeof *value) : write(fd, value, sizeof *value);
  err = errno;
  guard_arm(0);
  if (n < 0 && err == EINTR) err = EAGAIN; /* it slept: it would have blocked */
  errno = err;
  return n;
}

static ssize_t eventfd_read_nowait(int fd, uint64_t *value) {
  struct iovec iov = {value, sizeof *value};
  ssize_t n;
  do n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EOPNOTSUPP) return guarded_io(fd, value, POLLIN);
  return n;
}

/* eventfdRead(fd: number): bigint | null (null: counter 0; never blocks) */
static napi_value js_eventfd_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  uint64_t value = 0;
  ssize_t n;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  n = eventfd_read_nowait(fd, &value);
  if (n < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "read", errno);
  if (n != (ssize_t)sizeof value) return throw_custom(env, "EIO", EIO, "read", "short read: not an eventfd?");
  NAPI_CALL(env, napi_create_bigint_uint64(env, value, &result));
  return result;
}

/* eventfdWrite(fd: number, value: bigint = 1n): boolean (false: it would
 * block, i.e. the counter would pass 2^64 - 2; never blocks) */
static napi_value js_eventfd_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  uint64_t value = 1;
  napi_valuetype t;
  ssize_t n;
  napi_value result;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t == napi_bigint) {
    bool lossless = false;
    NAPI_CALL(env, napi_get_value_bigint_uint64(env, argv[1], &value, &lossless));
    if (!lossless) return throw_range(env, "value", "a bigint >= 0n and < 2n ** 64n");
  } else if (t == napi_number) {
    if (!arg_uint(env, argv[1], "value", MAX_SAFE_INT, &value)) return NULL;
  } else if (t != napi_undefined) {
    return throw_type(env, "value", "of type bigint");
  }
  /* The kernel refuses this value (EINVAL) before it could ever wait. */
  if (value == UINT64_MAX) return throw_errno(env, "write", EINVAL);
  n = guarded_io(fd, &value, POLLOUT);
  if (n < 0) {
    if (!is_eagain(errno)) return throw_errno(env, "write", errno);
    NAPI_CALL(env, napi_get_boolean(env, false, &result));
    return result;
  }
  if (n != (ssize_t)sizeof value) return throw_custom(env, "EIO", EIO, "write", "short write: not an eventfd?");
  NAPI_CALL(env, napi_get_boolean(env, true, &result));
  return result;
}

/* ------------------------------------------------------------------------ */
/* memfd / mmap                                                             */
/* ------------------------------------------------------------------------ */

/* memfdCreate(name: string, size: number): number */
static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[256];
  size_t len = 0;
  uint64_t size;
  int fd, r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok)
    return throw_type(env, "name", "of type string");
  if (!arg_uint(env, argv[1], "size", MAX_SAFE_INT, &size)) return NULL;
  /* The kernel limit is 249 bytes; longer names get EINVAL from it or here. */
  if (len >= sizeof name) return throw_errno(env, "memfd_create", EINVAL);
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  if (memchr(name, '\0', len) != NULL) return throw_errno(env, "memfd_create", EINVAL);
  fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  do r = ftruncate(fd, (off_t)size);
  while (r < 0 && errno == EINTR);
  if (r < 0) return close_and_throw(env, fd, "ftruncate", errno);
  return return_fd(env, fd);
}

/* fdSize(fd: number): number */
static napi_value js_fd_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct stat st;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (fstat(fd, &st) < 0) return throw_errno(env, "fstat", errno);
  return make_number(env, (double)st.st_size);
}

/* State shared by munmap() and the ArrayBuffer's finalizer (its hint). The
 * finalizer runs exactly once, after the backing store is released (either
 * because munmap() detached the buffer or because it was collected); it
 * unmaps only if munmap() has not, and always frees this struct. */
typedef struct {
  void *addr;
  size_t len;
  bool mapped;
} mapping_t;

/* Marks ArrayBuffers created by mmap(), so munmap() can trust napi_unwrap. */
static const napi_type_tag MAPPING_TAG = {0x8f3c2a6e5b1d4c07ULL, 0xa4e19b7d03c65f21ULL};

static void mapping_finalize(napi_env env, void *data, void *hint) {
  mapping_t *m = hint;
  int64_t unused;
  (void)data;
  if (m->mapped) {
    munmap(m->addr, m->len);
    m->mapped = false;
    napi_adjust_external_memory(env, -(int64_t)m->len, &unused);
  }
  free(m);
}

/* mmap(fd: number, length: number, offset: number, writable = true): ArrayBuffer */
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], ab;
  int32_t fd;
  uint64_t length, offset;
  bool writable;
  long page = sysconf(_SC_PAGESIZE);
  void *addr;
  mapping_t *m;
  int64_t unused;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_uint(env, argv[1], "length", MAX_SAFE_INT, &length)) return NULL;
  if (!arg_uint(env, argv[2], "offset", MAX_SAFE_INT, &offset)) return NULL;
  if (!arg_bool(env, argv[3], "writable", true, &writable)) return NULL;
  if (length == 0 || page <= 0 || offset % (uint64_t)page != 0) return throw_errno(env, "mmap", EINVAL);
  if (length > MAX_MAPPING_LENGTH) return throw_range(env, "length", "<= 4294967296 (Node 20 ArrayBuffer limit)");

  m = malloc(sizeof *m);
  if (m == NULL) return throw_errno(env, "mmap", ENOMEM);
  addr = mmap(NULL, length, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) {
    int err = errno;
    free(m);
    return throw_errno(env, "mmap", err);
  }
  m->addr = addr;
  m->len = length;
  m->mapped = true;
  /* From here on `m` and the mapping belong to mapping_finalize. On failure
   * Node still arranges for the finalizer to run (or, at worst, leaks);
   * unmapping here could lead to a double munmap, so do not. */
  if (napi_create_external_arraybuffer(env, addr, length, mapping_finalize, m, &ab) != napi_ok)
    return throw_napi_failure(env, "napi_create_external_arraybuffer");
  napi_adjust_external_memory(env, (int64_t)length, &unused);
  /* If tagging/wrapping fails the buffer is unreachable; GC finalizes it. */
  NAPI_CALL(env, napi_type_tag_object(env, ab, &MAPPING_TAG));
  NAPI_CALL(env, napi_wrap(env, ab, m, NULL, NULL, NULL));
  return ab;
}

/* munmap(buf: ArrayBuffer): void. Throws code 'EALREADY' when the buffer has
 * already been unmapped (or otherwise detached). */
static napi_value js_munmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_ab = false, tagged = false, detached = false;
  void *p = NULL;
  mapping_t *m;
  void *addr;
  size_t len;
  int64_t unused;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CALL(env, napi_is_arraybuffer(env, argv[0], &is_ab));
  if (!is_ab) return throw_type(env, "buf", "an ArrayBuffer returned by mmap()");
  NAPI_CALL(env, napi_check_object_type_tag(env, argv[0], &MAPPING_TAG, &tagged));
  if (!tagged) return throw_type(env, "buf", "an ArrayBuffer returned by mmap()");
  /* A detached buffer's mapping_t may already have been freed by the
   * finalizer, so check this before touching it. */
  NAPI_CALL(env, napi_is_detached_arraybuffer(env, argv[0], &detached));
  if (detached) return throw_custom(env, "EALREADY", EALREADY, "munmap", "mapping already unmapped");
  NAPI_CALL(env, napi_unwrap(env, argv[0], &p));
  m = p;
  if (!m->mapped) return throw_custom(env, "EALREADY", EALREADY, "munmap", "mapping already unmapped");

  addr = m->addr;
  len = m->len;
  m->mapped = false; /* the finalizer must not unmap from now on */
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) {
    m->mapped = true; /* still reachable from JS: leave it mapped */
    return throw_napi_failure(env, "napi_detach_arraybuffer");
  }
  /* Every view now has byteLength 0. Do not touch `m` any more: the
   * finalizer may free it as soon as the backing store is released. */
  napi_adjust_external_memory(env, -(int64_t)len, &unused);
  if (munmap(addr, len) < 0) return throw_errno(env, "munmap", errno);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* ioctl                                                                    */
/* ------------------------------------------------------------------------ */

/* ioctl(fd: number, request: number, arg: Uint8Array): number */
static napi_value js_ioctl(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  uint64_t request;
  void *data = NULL;
  size_t len = 0;
  unsigned int dir, size;
  int r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_uint(env, argv[1], "request", UINT32_MAX, &request)) return NULL;
  if (!arg_bytes(env, argv[2], "arg", &data, &len)) return NULL;
  /* For _IOC-encoded requests, refuse an argument smaller than the size the
   * kernel will copy in or out. Legacy requests (direction bits 0, e.g.
   * FIONREAD) carry no size; the caller must size `arg` correctly. */
  dir = _IOC_DIR((unsigned int)request);
  size = _IOC_SIZE((unsigned int)request);
  if (dir != _IOC_NONE && len < size) {
    char expected[64];
    snprintf(expected, sizeof expected, ">= _IOC_SIZE(request) = %u", size);
    return throw_range(env, "arg.byteLength", expected);
  }
  do r = ioctl(fd, (unsigned long)request, data);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "ioctl", errno);
  return make_number(env, r);
}

/* ------------------------------------------------------------------------ */
/* CPU placement (pid 0 = the calling thread, i.e. the JS main thread)      */
/* ------------------------------------------------------------------------ */

static napi_value js_get_cpu(napi_env env, napi_callback_info info) {
  int cpu = sched_getcpu();
  (void)info;
  if (cpu < 0) return throw_errno(env, "sched_getcpu", errno);
  return make_number(env, cpu);
}

/* setAffinity(cpus: number[]): void */
static napi_value js_set_affinity(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t n, i;
  cpu_set_t set;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CALL(env, napi_is_array(env, argv[0], &is_array));
  if (!is_array) return throw_type(env, "cpus", "an array of numbers");
  NAPI_CALL(env, napi_get_array_length(env, argv[0], &n));
  CPU_ZERO(&set);
  for (i = 0; i < n; i++) {
    napi_value el;
    uint64_t cpu;
    NAPI_CALL(env, napi_get_element(env, argv[0], i, &el));
    if (!arg_uint(env, el, "cpus[i]", CPU_SETSIZE - 1, &cpu)) return NULL;
    CPU_SET((int)cpu, &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) < 0) return throw_errno(env, "sched_setaffinity", errno);
  return NULL;
}

/* getAffinity(): number[] (ascending) */
static napi_value js_get_affinity(napi_env env, napi_callback_info info) {
  cpu_set_t set;
  napi_value arr, el;
  uint32_t idx = 0;
  int cpu;
  (void)info;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) < 0) return throw_errno(env, "sched_getaffinity", errno);
  NAPI_CALL(env, napi_create_array(env, &arr));
  for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &set)) continue;
    NAPI_CALL(env, napi_create_int32(env, cpu, &el));
    NAPI_CALL(env, napi_set_element(env, arr, idx++, el));
  }
  return arr;
}

/* ------------------------------------------------------------------------ */
/* FdPoller: a libuv uv_poll_t on the environment's (main) loop             */
/* ------------------------------------------------------------------------ */

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
  guard_release();
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

static bool fd_is_polled(napi_env env, int fd) {
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
  napi_value self = NULL, cb = NULL, argv[3], result;
  napi_status st;

  if (!p->started || p->closing) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, p->self, &self) != napi_ok || self == NULL ||
      napi_get_reference_value(env, p->callback, &cb) != napi_ok || cb == NULL)
    goto out;
  if (status < 0) {
    /* libuv has already stopped the handle (e.g. POLLERR -> UV_EBADF). */
    poller_mark_stopped(env, p);
    argv[0] = make_errno_error(env, "uv_poll", -status);
    events = 0;
  } else {
    argv[0] = get_null(env);
  }
  if (argv[0] == NULL || napi_get_boolean(env, (events & UV_READABLE) != 0, &argv[1]) != napi_ok ||
      napi_get_boolean(env, (events & UV_WRITABLE) != 0, &argv[2]) != napi_ok)
    goto out;
  st = napi_make_callback(env, p->ctx, self, cb, 3, argv, &result);
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

/* new FdPoller(fd: number, callback: (err, readable, writable) => void) */
static napi_value poller_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self, new_target, name;
  napi_valuetype t;
  int32_t fd;
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
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  NAPI_CALL(env, napi_get_instance_data(env, &state));
  if (state == NULL) return throw_napi_failure(env, "napi_get_instance_data");
  p = calloc(1, sizeof *p);
  if (p == NULL) return throw_errno(env, "uv_poll_init", ENOMEM);
  p->env = env;
  p->fd = fd;
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

/* ------------------------------------------------------------------------ */
/* Module                                                                   */
/* ------------------------------------------------------------------------ */

#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default_method, NULL}

NAPI_MODULE_INIT() {
  napi_value cls;
  addon_state_t *state;
  napi_property_descriptor poller_props[] = {
      METHOD("start", poller_start), METHOD("stop", poller_stop), METHOD("close", poller_close),
      METHOD("ref", poller_ref),     METHOD("unref", poller_unref),
  };
  napi_property_descriptor fns[] = {
      FN("socketListen", js_socket_listen),
      FN("socketAccept", js_socket_accept),
      FN("socketConnect", js_socket_connect),
      FN("socketPair", js_socket_pair),
      FN("peerCredentials", js_peer_credentials),
      FN("sendMsg", js_send_msg),
      FN("recvMsg", js_recv_msg),
      FN("readFd", js_read_fd),
      FN("writeFd", js_write_fd),
      FN("closeFd", js_close_fd),
      FN("setNonBlocking", js_set_non_blocking),
      FN("eventfd", js_eventfd),
      FN("eventfdRead", js_eventfd_read),
      FN("eventfdWrite", js_eventfd_write),
      FN("memfdCreate", js_memfd_create),
      FN("fdSize", js_fd_size),
      FN("mmap", js_mmap),
      FN("munmap", js_munmap),
      FN("ioctl", js_ioctl),
      FN("getCpu", js_get_cpu),
      FN("setAffinity", js_set_affinity),
      FN("getAffinity", js_get_affinity),
  };
  /* The state is freed by the async cleanup hook at environment teardown
   * (after all handles are closed), not by an instance-data finalizer. */
  state = calloc(1, sizeof *state);
  if (state == NULL) return throw_errno(env, "calloc", ENOMEM);
  if (napi_add_async_cleanup_hook(env, state_cleanup_hook, state, &state->hook) != napi_ok) {
    free(state);
    return throw_napi_failure(env, "napi_add_async_cleanup_hook");
  }
  NAPI_CALL(env, napi_set_instance_data(env, state, NULL, NULL));
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  NAPI_CALL(env, napi_define_class(env, "FdPoller", NAPI_AUTO_LENGTH, poller_new, NULL,
                                   sizeof poller_props / sizeof poller_props[0], poller_props, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "FdPoller", cls));
  return exports;
}
