/* Errors, argument parsing and results shared by every file (see shim.h). */
#include "shim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

napi_value make_errno_error(napi_env env, const char *syscall, int err) {
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

napi_value throw_errno(napi_env env, const char *syscall, int err) {
  return throw_value(env, make_errno_error(env, syscall, err), syscall);
}

/* Custom (non-kernel) condition reported in the same shape as throw_errno. */
napi_value throw_custom(napi_env env, const char *code, int err, const char *syscall,
                               const char *detail) {
  return throw_value(env, make_error(env, code, err, syscall, detail), detail);
}

napi_value close_and_throw(napi_env env, int fd, const char *syscall, int err) {
  close(fd);
  return throw_errno(env, syscall, err);
}

/* A node_api call itself failed (out of memory, pending exception, ...). */
napi_value throw_napi_failure(napi_env env, const char *what) {
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

napi_value throw_type(napi_env env, const char *name, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

napi_value throw_range(napi_env env, const char *name, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "The value of \"%s\" is out of range. It must be %s", name, expected);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Argument helpers: return false with a pending exception on failure.      */
/* ------------------------------------------------------------------------ */

bool is_undefined(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_undefined;
}

bool arg_int32(napi_env env, napi_value v, const char *name, int32_t *out) {
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
bool arg_uint(napi_env env, napi_value v, const char *name, double max, uint64_t *out) {
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

bool arg_bool(napi_env env, napi_value v, const char *name, bool dflt, bool *out) {
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
bool arg_bytes(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
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
int arg_sockaddr(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *salen) {
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

napi_value get_null(napi_env env) {
  napi_value v = NULL;
  napi_get_null(env, &v);
  return v;
}

napi_value make_number(napi_env env, double d) {
  napi_value v;
  NAPI_CALL(env, napi_create_double(env, d, &v));
  return v;
}

/* Returns a freshly created fd to JS; closes it if that fails. */
napi_value return_fd(napi_env env, int fd) {
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) {
    close(fd);
    return throw_napi_failure(env, "napi_create_int32");
  }
  return v;
}

napi_value make_bool(napi_env env, bool b) {
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, b, &v));
  return v;
}

bool is_eagain(int err) { return err == EAGAIN || err == EWOULDBLOCK; }
