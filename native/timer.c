/* timerfd: a CLOCK_MONOTONIC timer armed at an absolute deadline, whose
 * readiness an FdPoller reports (board time, src/board/board-timerfd.ts).
 * process.hrtime.bigint() reads the same clock (libuv's uv_hrtime is
 * clock_gettime(CLOCK_MONOTONIC) on Linux), so its values are deadlines here. */
#include "shim.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL

/* timerfdCreate(): number (CLOCK_MONOTONIC, non-blocking, close-on-exec, disarmed) */
napi_value js_timerfd_create(napi_env env, napi_callback_info info) {
  int fd;
  (void)info;
  fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "timerfd_create", errno);
  return return_fd(env, fd);
}

/* A deadline in ns on CLOCK_MONOTONIC: a bigint in [1, 2^63). 0 would disarm
 * (timerfdDisarm says so explicitly). */
static bool arg_deadline(napi_env env, napi_value v, struct timespec *out) {
  napi_valuetype t;
  int64_t ns = 0;
  bool lossless = false;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_bigint) {
    throw_type(env, "deadlineNs", "of type bigint");
    return false;
  }
  if (napi_get_value_bigint_int64(env, v, &ns, &lossless) != napi_ok || !lossless || ns < 1) {
    throw_range(env, "deadlineNs", "a bigint >= 1n and < 2n ** 63n");
    return false;
  }
  out->tv_sec = (time_t)(ns / NS_PER_S);
  out->tv_nsec = (long)(ns % NS_PER_S);
  return true;
}

/* timerfdArm(fd: number, deadlineNs: bigint): void — one expiration at the
 * absolute time (at once if it has passed); replaces any earlier arming, and
 * drops an expiration not yet read (timerfd_settime resets the count, so the
 * fd is no longer readable: a caller that re-arms on every wake-up never
 * needs to read). */
napi_value js_timerfd_arm(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  struct itimerspec its = {{0, 0}, {0, 0}};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (!arg_deadline(env, argv[1], &its.it_value)) return NULL;
  if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) return throw_errno(env, "timerfd_settime", errno);
  return NULL;
}

/* timerfdDisarm(fd: number): void — no expiration until armed again; one not
 * yet read is dropped too. */
napi_value js_timerfd_disarm(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct itimerspec its = {{0, 0}, {0, 0}};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (timerfd_settime(fd, 0, &its, NULL) < 0) return throw_errno(env, "timerfd_settime", errno);
  return NULL;
}

/* timerfdRead(fd: number): bigint | null — the expirations since the last
 * read (and resets them), null when there were none. Never blocks: the fd is
 * checked to be a timerfd (timerfd_gettime: EINVAL otherwise), then read with
 * eventfd_read_nowait (preadv2 RWF_NOWAIT, the same 8-byte counter read). */
napi_value js_timerfd_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  struct itimerspec its;
  uint64_t count = 0;
  ssize_t n;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (timerfd_gettime(fd, &its) < 0) return throw_errno(env, "timerfd_gettime", errno);
  n = eventfd_read_nowait(fd, &count);
  if (n < 0) return is_eagain(errno) ? get_null(env) : throw_errno(env, "read", errno);
  if (n != (ssize_t)sizeof count) return throw_custom(env, "EIO", EIO, "read", "short read from a timerfd");
  NAPI_CALL(env, napi_create_bigint_uint64(env, count, &result));
  return result;
}

/* monotonicNs(): bigint — clock_gettime(CLOCK_MONOTONIC), the timerfd's clock. */
napi_value js_monotonic_ns(napi_env env, napi_callback_info info) {
  struct timespec ts;
  napi_value result;
  (void)info;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) return throw_errno(env, "clock_gettime", errno);
  NAPI_CALL(env, napi_create_bigint_int64(env, (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec, &result));
  return result;
}
