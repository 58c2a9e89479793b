/* Character-device calls (the GPIO uAPI): a generic ioctl on a caller's
 * buffer, and a non-blocking read into a caller's buffer. */
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* ioctl(fd: number, request: number, arg: ArrayBufferView): number */
napi_value js_ioctl(napi_env env, napi_callback_info info) {
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
  /* An _IOC-encoded request names the size the kernel copies in or out:
   * refuse a smaller buffer instead of letting the kernel run past it.
   * Legacy requests (direction bits 0, e.g. FIONREAD) carry no size. */
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

/* readFd(fd: number, buffer: ArrayBufferView): number | null (null on EAGAIN) */
napi_value js_read_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data = NULL;
  size_t len = 0;
  ssize_t n;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_bytes(env, argv[1], "buffer", &data, &len)) return NULL;
  if (len == 0) return throw_range(env, "buffer.byteLength", ">= 1");
  do n = read(fd, data, len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "read", errno);
  return make_number(env, (double)n);
}
