/* vgpio_timerfd_floor: the C floor under the board clock's cost, beside the Node one.
 *
 *   vgpio_timerfd_floor SECONDS INTERVAL_NS
 *
 * One thread waits in epoll_wait for a timerfd armed at start + k * INTERVAL_NS (absolute,
 * CLOCK_MONOTONIC), reads it and arms the next deadline: the wake-ups a clock needs (two per
 * period) and nothing else. Prints "wakes N cpu SHARE" (SHARE: user + system CPU over the run,
 * as a fraction of one core). A bench tool, not part of the addon. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double cpu_us(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

static int arm(int fd, int64_t deadline) {
  struct itimerspec its = {{0, 0}, {deadline / 1000000000LL, deadline % 1000000000LL}};
  return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0;
  int64_t interval = argc > 2 ? atoll(argv[2]) : 0;
  if (seconds <= 0 || interval <= 0) {
    fprintf(stderr, "usage: vgpio_timerfd_floor SECONDS INTERVAL_NS\n");
    return 2;
  }
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    perror("timerfd/epoll");
    return 1;
  }
  int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9), deadline = start + interval;
  double cpu0 = cpu_us();
  long wakes = 0;
  if (arm(fd, deadline) < 0) {
    perror("timerfd_settime");
    return 1;
  }
  while (now_ns() < end) {
    uint64_t count;
    if (epoll_wait(ep, &ev, 1, -1) < 1) continue;
    if (read(fd, &count, sizeof count) != sizeof count) continue;
    wakes++;
    deadline += interval;
    if (arm(fd, deadline) < 0) {
      perror("timerfd_settime");
      return 1;
    }
  }
  printf("wakes %ld cpu %.6f\n", wakes, (cpu_us() - cpu0) / ((now_ns() - start) / 1e3));
  return 0;
}
