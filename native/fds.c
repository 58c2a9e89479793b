/* Plain descriptors (close, O_NONBLOCK) and eventfds, whose read and write
 * never block the calling thread. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* closeFd(fd: number): void */
napi_value js_close_fd(napi_env env, napi_callback_info info) {
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

/*
 * Closing a descriptor a peer sent us can wait on another party: close()
 * flushes a FUSE file (a request the FUSE server answers, or not) or an NFS
 * file, drains a tty, lingers on a TCP socket with SO_LINGER. Kinds known
 * never to wait are closed at once; any other goes to one background closer
 * thread, so a hostile descriptor can hold only that thread, never the event
 * loop. (The closer never touches JavaScript.)
 */
static bool close_cannot_wait(int fd) {
  struct stat st;
  struct statfs fs;
  if (fstat(fd, &st) < 0) return true; /* EBADF: let close() report it */
  if (S_ISFIFO(st.st_mode)) return true;
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return false;
  if (S_ISSOCK(st.st_mode)) {
    int domain = 0;
    struct linger l = {0, 0};
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX) return true;
    len = sizeof l;
    return getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) == 0 && !l.l_onoff;
  }
  if (fstatfs(fd, &fs) < 0) return false;
  switch ((unsigned long)fs.f_type) {
  case 0x01021994: /* tmpfs: memfd, /dev/shm */
  case 0x958458f6: /* hugetlbfs */
  case 0x858458f6: /* ramfs */
  case 0x09041934: /* anon inodes: eventfd, timerfd, ... */
  case 0x00009fa0: /* procfs */
  case 0x62656572: /* sysfs */
  case 0x0000ef53: /* ext2/3/4 */
  case 0x58465342: /* xfs */
  case 0x9123683e: /* btrfs */
    return true;
  default:
    return false;
  }
}

#define CLOSER_QUEUE 4096
static pthread_mutex_t closer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closer_wake = PTHREAD_COND_INITIALIZER;
static int closer_fds[CLOSER_QUEUE];
static size_t closer_head, closer_count;
static bool closer_started;

static void *closer_main(void *arg) {
  (void)arg;
  for (;;) {
    int fd;
    pthread_mutex_lock(&closer_lock);
    while (closer_count == 0) pthread_cond_wait(&closer_wake, &closer_lock);
    fd = closer_fds[closer_head];
    closer_head = (closer_head + 1) % CLOSER_QUEUE;
    closer_count--;
    pthread_mutex_unlock(&closer_lock);
    close(fd);
  }
  return NULL;
}

int close_no_wait(int fd) {
  int r = 0;
  if (close_cannot_wait(fd)) return close(fd) < 0 && errno != EINTR ? -1 : 0;
  pthread_mutex_lock(&closer_lock);
  if (!closer_started) {
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    /* The closer takes no signal meant for the JS thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    keep_addon_loaded();
    closer_started = pthread_create(&t, &attr, closer_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
  }
  if (!closer_started) r = ENOSYS;
  else if (closer_count == CLOSER_QUEUE) r = EAGAIN; /* the closer is stuck: keep the fd open */
  else {
    closer_fds[(closer_head + closer_count) % CLOSER_QUEUE] = fd;
    closer_count++;
    pthread_cond_signal(&closer_wake);
  }
  pthread_mutex_unlock(&closer_lock);
  if (r != 0) {
    errno = r;
    return -1;
  }
  return 1;
}

/* closeNoWait(fd: number): 'now' | 'background' (a peer's descriptor; see close_no_wait) */
napi_value js_close_no_wait(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  int r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (fd_is_polled(env, fd))
    return throw_custom(env, "EBUSY", EBUSY, "close",
                        "fd is watched by a started FdPoller; stop() or close() it first");
  r = close_no_wait(fd);
  if (r < 0) return throw_errno(env, "close", errno);
  NAPI_CALL(env, napi_create_string_utf8(env, r == 0 ? "now" : "background", NAPI_AUTO_LENGTH, &result));
  return result;
}

/* setNonBlocking(fd: number, on: boolean): void */
napi_value js_set_non_blocking(napi_env env, napi_callback_info info) {
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

/* eventfd(initval: number, nonblock = true, semaphore = false): number */
napi_value js_eventfd(napi_env env, napi_callback_info info) {
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
 *    the counter's lock (current kernels set FMODE_NOWAIT on eventfds), so the
 *    kernel itself returns EAGAIN on an empty counter: one syscall, no race.
 *    A kernel (or fd kind) without it answers EOPNOTSUPP: then the write path's
 *    guard is used.
 *  - Write: eventfd's write has no NOWAIT variant (pwritev2(RWF_NOWAIT) gives
 *    EOPNOTSUPP). poll(POLLOUT, 0) answers the common case (saturated counter:
 *    false at once); the race after it is closed by a guard: a POSIX timer
 *    directed at this thread (SIGEV_THREAD_ID) fires SIGRTMAX-1 every
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
 *  - Weighed and not taken: a watchdog thread that tgkill()s a thread stuck
 *    in write (no per-call syscalls, but a thread of our own, wake-ups while
 *    busy, and a window in which its signal lands in the next, unrelated
 *    syscall of the JS thread).
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

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_install_error; /* errno of a failed installation */

static void guard_install(void) {
  struct sigaction sa, old;
  if (sigaction(guard_signal(), NULL, &old) < 0) {
    guard_install_error = errno;
    return;
  }
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    guard_install_error = EBUSY; /* someone else uses the signal: do not steal it */
    return;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = guard_on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: the blocked syscall must return EINTR */
  keep_addon_loaded();
  if (sigaction(guard_signal(), &sa, NULL) < 0) guard_install_error = errno;
}

/* Returns 0 or an errno. The handler is per process, the timer per thread. */
static int guard_setup(void) {
  struct sigevent sev;
  sigset_t set;
  pthread_once(&guard_once, guard_install);
  if (guard_install_error != 0) return guard_install_error;
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

void eventfd_guard_release(void) {
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

ssize_t eventfd_read_nowait(int fd, uint64_t *value) {
  struct iovec iov = {value, sizeof *value};
  ssize_t n;
  do n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EOPNOTSUPP) return guarded_io(fd, value, POLLIN);
  return n;
}

/* eventfdRead(fd: number): bigint | null (null: counter 0; never blocks) */
napi_value js_eventfd_read(napi_env env, napi_callback_info info) {
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
napi_value js_eventfd_write(napi_env env, napi_callback_info info) {
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
  if (guard_setup() == EBUSY)
    return throw_custom(env, "EBUSY", EBUSY, "sigaction",
                        "the eventfd write guard needs signal SIGRTMAX-1, which another handler holds");
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
