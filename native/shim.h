/*
 * vgpio_native: a thin Linux OS shim for vgpio, written against node_api.h
 * (NAPI_VERSION 8), in C. All protocol logic lives in TypeScript; these files
 * only wrap system calls, mmap'd memory, two signal handlers and a libuv poll
 * handle. One file per concern:
 *   napi.c     errors, argument parsing, results (shared by all)
 *   module.c   the export table
 *   sockets.c  AF_UNIX listen/accept/connect/pair, sendmsg/recvmsg with
 *              SCM_RIGHTS, SO_PEERCRED
 *   fds.c      close (a peer's fds without waiting), O_NONBLOCK, eventfd
 *              (never-blocking read/write)
 *   memory.c   memfd, seals, mmap/munmap, the SIGBUS guard
 *   poller.c   FdPoller (uv_poll_t) and the per-environment state
 *   affinity.c CPU placement
 *   chardev.c  ioctl and non-blocking read (the GPIO character device)
 *   timer.c    timerfd at absolute CLOCK_MONOTONIC deadlines (board time)
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
 *  - Everything runs on the JS thread, except close() of a peer's descriptor
 *    that could wait (fds.c: one background closer thread); the libuv
 *    threadpool is never used.
 */
#ifndef VGPIO_SHIM_H
#define VGPIO_SHIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif

#include <node_api.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1 */

/* ---- napi.c: errors ------------------------------------------------------ */

/* Builds an Error with code/errno/syscall properties; NULL if that failed. */
napi_value make_errno_error(napi_env env, const char *syscall, int err);
/* All throw_* return NULL so callers can `return throw_...`. */
napi_value throw_errno(napi_env env, const char *syscall, int err);
/* A non-kernel condition reported in the same shape as throw_errno. */
napi_value throw_custom(napi_env env, const char *code, int err, const char *syscall, const char *detail);
napi_value close_and_throw(napi_env env, int fd, const char *syscall, int err);
/* A node_api call itself failed (out of memory, pending exception, ...). */
napi_value throw_napi_failure(napi_env env, const char *what);
napi_value throw_type(napi_env env, const char *name, const char *expected);
napi_value throw_range(napi_env env, const char *name, const char *expected);

#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) return throw_napi_failure((env), #call);            \
  } while (0)

/* ---- napi.c: arguments (false with a pending exception on failure) ------- */

bool is_undefined(napi_env env, napi_value v);
bool arg_int32(napi_env env, napi_value v, const char *name, int32_t *out);
/* Non-negative integer <= max (max <= 2^53 - 1). */
bool arg_uint(napi_env env, napi_value v, const char *name, double max, uint64_t *out);
bool arg_bool(napi_env env, napi_value v, const char *name, bool dflt, bool *out);
/* Any ArrayBufferView; the pointer is valid for the current native call. */
bool arg_bytes(napi_env env, napi_value v, const char *name, void **data, size_t *len);
/* 0, a positive errno for an unusable path, or -1 with a pending exception.
 * A leading NUL character selects the Linux abstract namespace. */
int arg_sockaddr(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *salen);

/* ---- napi.c: results ----------------------------------------------------- */

napi_value get_null(napi_env env);
napi_value make_bool(napi_env env, bool b);
napi_value make_number(napi_env env, double d);
/* Returns a freshly created fd to JS; closes it if that fails. */
napi_value return_fd(napi_env env, int fd);
bool is_eagain(int err);

/* ---- poller.c: per-environment state ------------------------------------- */

/* Sets up the state and FdPoller class; false with a pending exception. */
bool poller_init(napi_env env, napi_value exports);
/* True while a started FdPoller watches `fd` (closeFd refuses then). */
bool fd_is_polled(napi_env env, int fd);

/* ---- fds.c: called by the teardown hook, on the environment's thread ----- */

void eventfd_guard_release(void);
/* One read of an eventfd's counter that never blocks; -1 with errno (EAGAIN:
 * the counter is 0). */
ssize_t eventfd_read_nowait(int fd, uint64_t *value);
/* Closes a peer's descriptor without waiting on anyone: 0 closed now, 1 handed
 * to the background closer thread, -1 with errno (EAGAIN: its queue is full,
 * the fd stays open). */
int close_no_wait(int fd);

/* ---- module.c ------------------------------------------------------------ */

/* Pins this shared object in memory (called by each signal installer). */
void keep_addon_loaded(void);

/* ---- exported functions, one file per concern ---------------------------- */

#define EXPORT(name) napi_value name(napi_env env, napi_callback_info info)
EXPORT(js_socket_listen);
EXPORT(js_socket_accept);
EXPORT(js_socket_connect);
EXPORT(js_socket_pair);
EXPORT(js_peer_credentials);
EXPORT(js_send_msg);
EXPORT(js_recv_msg);
EXPORT(js_close_fd);
EXPORT(js_close_no_wait);
EXPORT(js_set_non_blocking);
EXPORT(js_eventfd);
EXPORT(js_eventfd_read);
EXPORT(js_eventfd_write);
EXPORT(js_memfd_create);
EXPORT(js_fd_size);
EXPORT(js_fd_seals);
EXPORT(js_mmap);
EXPORT(js_munmap);
EXPORT(js_mapping_faulted);
EXPORT(js_fault_counter);
EXPORT(js_get_cpu);
EXPORT(js_set_affinity);
EXPORT(js_get_affinity);
EXPORT(js_ioctl);
EXPORT(js_read_fd);
EXPORT(js_timerfd_create);
EXPORT(js_timerfd_arm);
EXPORT(js_timerfd_disarm);
EXPORT(js_timerfd_read);
EXPORT(js_monotonic_ns);

#endif
