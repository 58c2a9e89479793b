/* vgpio_eventfd_floor: the C floor under any vhost-user round trip, beside the Node one.
 *
 *   vgpio_eventfd_floor ITERATIONS [PARENT_CPU CHILD_CPU]
 *
 * Two processes ping-pong through two eventfds, each blocking in read(2): the cheapest
 * kick -> call exchange the kernel offers. Prints one round trip per line, in nanoseconds, then
 * "cpu PARENT CHILD" (the CPUs each side last ran on). A bench tool, not part of the addon. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pin(const char *arg) {
  if (arg == NULL) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(atoi(arg), &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0) perror("sched_setaffinity");
}

static int wait_and_signal(int in, int out) {
  uint64_t v;
  if (read(in, &v, sizeof v) != sizeof v) return -1;
  v = 1;
  return write(out, &v, sizeof v) == sizeof v ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: %s ITERATIONS [PARENT_CPU CHILD_CPU]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]);
  if (n < 1) return 2;
  int ping = eventfd(0, 0), pong = eventfd(0, 0), cpus = eventfd(0, 0);
  if (ping < 0 || pong < 0 || cpus < 0) return perror("eventfd"), 1;
  pid_t child = fork();
  if (child < 0) return perror("fork"), 1;
  if (child == 0) {
    pin(argc == 4 ? argv[3] : NULL);
    for (long i = 0; i <= n; i++)
      if (wait_and_signal(ping, pong) < 0) _exit(1);
    uint64_t cpu = (uint64_t)sched_getcpu() + 1;
    _exit(write(cpus, &cpu, sizeof cpu) == sizeof cpu ? 0 : 1);
  }
  pin(argc == 4 ? argv[2] : NULL);
  uint64_t *ns = malloc(sizeof *ns * (size_t)n);
  if (ns == NULL) return 1;
  uint64_t one = 1;
  for (long i = 0; i <= n; i++) { /* round 0 warms both sides up and is not reported */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (write(ping, &one, sizeof one) != sizeof one) return perror("write"), 1;
    uint64_t v;
    if (read(pong, &v, sizeof v) != sizeof v) return perror("read"), 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (i > 0) ns[i - 1] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec);
  }
  uint64_t child_cpu = 0;
  if (read(cpus, &child_cpu, sizeof child_cpu) != sizeof child_cpu) return perror("read"), 1;
  int status;
  waitpid(child, &status, 0);
  for (long i = 0; i < n; i++) printf("%llu\n", (unsigned long long)ns[i]);
  printf("cpu %d %llu\n", sched_getcpu(), (unsigned long long)(child_cpu - 1));
  free(ns);
  return 0;
}
