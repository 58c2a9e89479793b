/* vgpio_bench_frontend: an independent vhost-user front-end in C, so that `vgpio bench` measures
 * the back-end and not itself. A bench tool, not part of the addon.
 *
 *   vgpio_bench_frontend --socket PATH [--iterations N] [--warmup N] [--in-flight 1,8,64]
 *                        [--cpu C] [--spin] [--event-idx] [--queue-size Q] [--json] [--commands]
 *
 * It connects the way QEMU does (docs/protocol.md §8), negotiates VERSION_1 (and EVENT_IDX with
 * --event-idx; never VIRTIO_GPIO_F_IRQ: the requestq only), shares a memfd as guest memory, starts
 * the requestq (queue 0, split ring, kick and call eventfds) and sends GET_VALUE requests
 * (virtio 1.2 §5.18.6.4) on lines 0..K-1, K chains in flight. Each reply is checked: used id, used
 * length 2, status OK, value 0 or 1; any protocol error ends the run with a message and exit 1.
 *
 * Completions are waited for by a blocking read(2) of the call eventfd, or with --spin by polling
 * used.idx (notifications then suppressed). Kicks honour the device's suppression (used.flags
 * NO_NOTIFY, or avail_event under EVENT_IDX, virtio 1.2 §2.7.10), so a busy-polling back-end gets
 * none.
 *
 * Without --commands: SET_DIRECTION IN on the lines used, warm-up, N round trips (one in flight), the value of each line used, then N
 * requests with each --in-flight K; printed as text or, with --json, one JSON object.
 * With --commands (the form `vgpio bench` drives, one process per back-end, kept connected so
 * back-ends can be measured interleaved) it prints "ready ngpio=N features=0xF protocol=0xP
 * queue=Q" and then reads one command a line from stdin, answering one line each:
 *   rt N        -> "rt CPU_NS NS1 NS2 ... NSN"      N round trips, each in ns
 *   tp K N      -> "tp K REQUESTS WALL_NS CPU_NS"   about N requests, K in flight
 *   tpl K N     -> "tpl K REQUESTS WALL_NS CPU_NS NS1 ... NSR"   the same, and each request's
 *                  latency under that load (from the batch that made it available to the one
 *                  that found it used)
 *   inputs K    -> "inputs K"                       SET_DIRECTION IN on lines 0..K-1
 *   values K    -> "values V0 ... VK-1"             one GET_VALUE on each of lines 0..K-1
 *   quit (or end of input) -> "bye base=B cpu=C kicks=K suppressed=S"   ring stopped,
 *                  GET_VRING_BASE checked; the CPU this process last ran on; kicks sent, and
 *                  kicks left out because the device suppressed them
 * CPU_NS is this process's CPU time during the command. Errors go to stderr as
 * "vgpio_bench_frontend: ...", exit status 1 (2 for usage). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* vhost-user requests (vhost-user.rst "Front-end message types"), docs/protocol.md §6 */
enum {
  GET_FEATURES = 1,
  SET_FEATURES = 2,
  SET_OWNER = 3,
  SET_MEM_TABLE = 5,
  SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9,
  SET_VRING_BASE = 10,
  GET_VRING_BASE = 11,
  SET_VRING_KICK = 12,
  SET_VRING_CALL = 13,
  GET_PROTOCOL_FEATURES = 15,
  SET_PROTOCOL_FEATURES = 16,
  SET_VRING_ENABLE = 18,
  GET_CONFIG = 24,
};
#define FLAG_VERSION 0x1u
#define FLAG_REPLY 0x4u
#define FLAG_NEED_REPLY 0x8u
#define F_PROTOCOL_FEATURES (1ull << 30)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define F_EVENT_IDX (1ull << 29)
#define F_VERSION_1 (1ull << 32)
#define VIRTIO_GPIO_F_IRQ (1ull << 0)

/* split ring (virtio 1.2 §2.7) */
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1
#define SET_DIRECTION 0x0003
#define GET_VALUE 0x0004
#define DIRECTION_IN 2
#define MAX_QUEUE 1024

struct desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};
struct used_elem {
  uint32_t id, len;
};

#define GUEST_BASE 0x40000000ull
#define MEMORY_BYTES (4u << 20)
#define REPLY_TIMEOUT_S 5
#define WATCHDOG_S 10 /* the message in watchdog() says 10 too */ /* no completion for this long: the back-end is stuck or gone */
#define SLOT_BYTES 64 /* one request (8 bytes) and its response (2 bytes) per slot, own cache line */

static const char *prog = "vgpio_bench_frontend";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static const char *request_name(uint32_t r) {
  switch (r) {
  case GET_FEATURES: return "GET_FEATURES";
  case SET_FEATURES: return "SET_FEATURES";
  case SET_OWNER: return "SET_OWNER";
  case SET_MEM_TABLE: return "SET_MEM_TABLE";
  case SET_VRING_NUM: return "SET_VRING_NUM";
  case SET_VRING_ADDR: return "SET_VRING_ADDR";
  case SET_VRING_BASE: return "SET_VRING_BASE";
  case GET_VRING_BASE: return "GET_VRING_BASE";
  case SET_VRING_KICK: return "SET_VRING_KICK";
  case SET_VRING_CALL: return "SET_VRING_CALL";
  case GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
  case SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
  case SET_VRING_ENABLE: return "SET_VRING_ENABLE";
  case GET_CONFIG: return "GET_CONFIG";
  default: return "?";
  }
}

/* ---- the vhost-user channel ---- */

static int sock = -1;
static uint64_t protocol = 0;

static void send_msg(uint32_t request, uint32_t flags, const void *payload, uint32_t size, const int *fds,
                     int nfds) {
  unsigned char buf[12 + 256];
  if (size > 256) die("internal: payload too large");
  memcpy(buf, &request, 4);
  memcpy(buf + 4, &flags, 4);
  memcpy(buf + 8, &size, 4);
  if (size) memcpy(buf + 12, payload, size);
  struct iovec iov = {buf, 12 + size};
  union {
    char b[CMSG_SPACE(sizeof(int) * 8)];
    struct cmsghdr align;
  } ctl;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    mh.msg_control = ctl.b;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  ssize_t n;
  do n = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
    die("back-end closed the connection when we sent %s", request_name(request));
  if (n < 0) die("sending %s: %s", request_name(request), strerror(errno));
  if ((size_t)n != 12 + size) die("sending %s: short write (%zd bytes)", request_name(request), n);
}

static void read_exact(void *p, size_t len, const char *what) {
  unsigned char *b = p;
  while (len > 0) {
    ssize_t n = recv(sock, b, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      die("no reply to %s within %d s: is this a vhost-user back-end?", what, REPLY_TIMEOUT_S);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      die("back-end closed the connection while we waited for the reply to %s", what);
    if (n < 0) die("waiting for the reply to %s: %s", what, strerror(errno));
    b += n;
    len -= (size_t)n;
  }
}

/* Waits for the reply to `request`; returns its payload size (payload in `out`, at most `cap`). */
static uint32_t reply(uint32_t request, void *out, uint32_t cap) {
  const char *name = request_name(request);
  uint32_t hdr[3];
  read_exact(hdr, sizeof hdr, name);
  if (hdr[0] != request)
    die("expected the reply to %s (%u), got message %u: is this a vhost-user back-end?", name, request,
        hdr[0]);
  if (hdr[1] != (FLAG_VERSION | FLAG_REPLY))
    die("reply to %s has flags 0x%x, expected 0x5", name, hdr[1]);
  if (hdr[2] > cap) die("reply to %s has %u payload bytes, at most %u expected", name, hdr[2], cap);
  read_exact(out, hdr[2], name);
  return hdr[2];
}

static uint64_t get_u64(uint32_t request) {
  send_msg(request, FLAG_VERSION, NULL, 0, NULL, 0);
  uint64_t v;
  uint32_t n = reply(request, &v, sizeof v);
  if (n != 8) die("reply to %s has %u bytes, expected 8", request_name(request), n);
  return v;
}

/* A message without data reply; with REPLY_ACK it asks for the ack and checks it. */
static void configure(uint32_t request, const void *payload, uint32_t size, const int *fds, int nfds) {
  int ack = (protocol & PF_REPLY_ACK) != 0;
  send_msg(request, FLAG_VERSION | (ack ? FLAG_NEED_REPLY : 0), payload, size, fds, nfds);
  if (!ack) return;
  uint64_t status;
  uint32_t n = reply(request, &status, sizeof status);
  if (n != 8) die("%s ack has %u bytes, expected 8", request_name(request), n);
  if (status != 0) die("back-end refused %s (ack %llu)", request_name(request), (unsigned long long)status);
}

static void vring_state(uint32_t request, uint32_t index, uint32_t num) {
  uint32_t p[2] = {index, num};
  configure(request, p, sizeof p, NULL, 0);
}

/* ---- the requestq, as a driver sees it ---- */

static unsigned char *mem;       /* guest memory, mapped here at guest address GUEST_BASE */
static struct desc *desc;
static volatile uint16_t *avail; /* flags, idx, ring[Q], used_event */
static volatile uint16_t *used_hdr; /* flags, idx */
static volatile struct used_elem *used_ring;
static volatile uint16_t *avail_event; /* used ring's trailing field (EVENT_IDX) */
static uint32_t qsize;
static uint16_t avail_idx, last_used, kicked_at;
static int kick_fd, call_fd;
static int spin, event_idx;
static uint32_t ngpio;
static volatile uint64_t completed; /* volatile: read by the watchdog */
static int proto_on;
static unsigned char *slots; /* after the rings */

#define SLOT(i) (slots + (size_t)(i) * SLOT_BYTES)
static uint64_t gpa(const void *p) { return GUEST_BASE + (uint64_t)((const unsigned char *)p - mem); }

static void ring_layout(void) {
  desc = (struct desc *)mem;
  avail = (volatile uint16_t *)(mem + 16 * (size_t)qsize);
  size_t used_at = (16 * (size_t)qsize + 6 + 2 * (size_t)qsize + 4095) & ~(size_t)4095;
  used_hdr = (volatile uint16_t *)(mem + used_at);
  used_ring = (volatile struct used_elem *)(mem + used_at + 4);
  avail_event = (volatile uint16_t *)(mem + used_at + 4 + 8 * (size_t)qsize);
  slots = mem + ((used_at + 6 + 8 * (size_t)qsize + 4095) & ~(size_t)4095);
  /* Chain i: descriptor 2i (the 8-byte request, device-readable) -> 2i+1 (2-byte response). */
  for (uint32_t i = 0; i < qsize / 2; i++) {
    unsigned char *s = SLOT(i);
    desc[2 * i] = (struct desc){gpa(s), 8, DESC_F_NEXT, (uint16_t)(2 * i + 1)};
    desc[2 * i + 1] = (struct desc){gpa(s + 8), 2, DESC_F_WRITE, 0};
  }
  avail[0] = spin && !event_idx ? AVAIL_F_NO_INTERRUPT : 0;
}

static uint64_t kicks_sent, kicks_suppressed;
static unsigned char busy[MAX_QUEUE / 2]; /* chains made available and not yet used */

/* Makes chain `slot` (a request on `line`) available; not yet published. */
static void add_request(uint32_t slot, uint16_t type, uint16_t line, uint32_t value) {
  unsigned char *s = SLOT(slot);
  memcpy(s, &type, 2);
  memcpy(s + 2, &line, 2);
  memcpy(s + 4, &value, 4);
  busy[slot] = 1;
  s[8] = 0xee; /* neither OK nor ERR: a reply the device did not write is seen */
  s[9] = 0xee;
  avail[2 + (avail_idx % qsize)] = (uint16_t)(2 * slot);
  avail_idx++;
}

static void add(uint32_t slot, uint16_t line) { add_request(slot, GET_VALUE, line, 0); }

/* Publishes the added chains and kicks unless the device suppressed kicks. */
static void publish(void) {
  __atomic_store_n(&avail[1], avail_idx, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the index before reading the suppression (§2.7.10) */
  int notify;
  if (event_idx) {
    uint16_t ev = *avail_event;
    notify = (uint16_t)(avail_idx - ev - 1) < (uint16_t)(avail_idx - kicked_at);
  } else {
    notify = !(used_hdr[0] & USED_F_NO_NOTIFY);
  }
  kicked_at = avail_idx;
  if (!notify) {
    kicks_suppressed++;
    return;
  }
  kicks_sent++;
  uint64_t one = 1;
  if (write(kick_fd, &one, sizeof one) != sizeof one) die("kick eventfd write: %s", strerror(errno));
}

/* Under EVENT_IDX: interrupt on the next used entry (blocking), or never (spinning). */
static void want_interrupt(void) {
  if (event_idx) avail[2 + qsize] = spin ? (uint16_t)(last_used - 1) : last_used;
}

/* One used entry: checked; returns its slot and stores the value read. */
static uint32_t take(uint16_t *value) {
  volatile struct used_elem *e = &used_ring[last_used % qsize];
  uint32_t id = e->id, len = e->len;
  last_used++;
  if (id >= qsize || id % 2 != 0) die("used ring entry %u has id %u, not a chain head we made available", last_used - 1, id);
  uint32_t slot = id / 2;
  if (!busy[slot]) die("used ring entry %u has id %u, a chain not in flight (used twice?)", last_used - 1, id);
  busy[slot] = 0;
  unsigned char *s = SLOT(slot);
  uint16_t line, type;
  memcpy(&type, s, 2);
  memcpy(&line, s + 2, 2);
  const char *what = type == GET_VALUE ? "GET_VALUE" : "SET_DIRECTION";
  if (len != 2) die("%s line %u: used length %u, expected 2 (docs/protocol.md §1)", what, line, len);
  if (s[8] != 0) die("%s line %u: status %u, expected 0 (OK)", what, line, s[8]);
  if (s[9] > 1 || (type != GET_VALUE && s[9] != 0)) die("%s line %u: value %u in the response", what, line, s[9]);
  *value = s[9];
  completed++;
  return slot;
}

/* Waits until at least one used entry is there past last_used. */
static void wait_used(void) {
  for (;;) {
    uint16_t idx = __atomic_load_n(&used_hdr[1], __ATOMIC_ACQUIRE);
    if (idx != last_used) {
      if ((uint16_t)(idx - last_used) > qsize) die("used.idx %u is more than the ring size past %u", idx, last_used);
      return;
    }
    if (spin) {
      want_interrupt();
      while (__atomic_load_n(&used_hdr[1], __ATOMIC_ACQUIRE) == last_used) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause(); /* the sibling hyperthread (maybe the back-end) keeps its share */
#endif
      }
      continue;
    }
    want_interrupt();
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* used_event before re-reading used.idx */
    if (__atomic_load_n(&used_hdr[1], __ATOMIC_ACQUIRE) != last_used) continue;
    uint64_t v;
    ssize_t n = read(call_fd, &v, sizeof v);
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof v) die("call eventfd read: %s", n < 0 ? strerror(errno) : "short read");
  }
}

static uint64_t ns_of(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
#define NOW() ns_of(CLOCK_MONOTONIC)
#define CPU() ns_of(CLOCK_PROCESS_CPUTIME_ID)

/* One GET_VALUE on `line`, waited for. */
static uint16_t get_value(uint16_t line) {
  add(0, line);
  publish();
  wait_used();
  uint16_t v;
  take(&v);
  return v;
}

/* SET_DIRECTION IN on lines 0..k-1, as a guest requesting them as inputs does. */
static void set_inputs(uint32_t k) {
  for (uint32_t line = 0; line < k; line++) {
    add_request(0, SET_DIRECTION, (uint16_t)line, DIRECTION_IN);
    publish();
    wait_used();
    uint16_t v;
    take(&v);
  }
}

static void round_trips(uint64_t *ns, long n) {
  for (long i = 0; i < n; i++) {
    uint64_t a = NOW();
    get_value(0);
    uint64_t b = NOW();
    if (ns) ns[i] = b - a;
  }
}

static uint64_t made_available_at[MAX_QUEUE / 2];

/* About `n` requests (a multiple of k) on lines 0..k-1, k chains in flight; returns requests.
 * With `lat` (room for the total), each request's latency under that load, in ns: from the batch
 * that made it available to the batch that found it used (one clock read per batch). */
static uint64_t throughput(uint32_t k, uint64_t n, uint64_t *lat) {
  uint64_t rounds = (n + k - 1) / k, total = rounds * k, sent = 0, done = 0;
  uint64_t now = lat ? NOW() : 0;
  for (uint32_t i = 0; i < k; i++, sent++) {
    add(i, (uint16_t)i);
    made_available_at[i] = now;
  }
  publish();
  while (done < total) {
    wait_used();
    if (lat) now = NOW();
    uint16_t idx = __atomic_load_n(&used_hdr[1], __ATOMIC_ACQUIRE);
    while (last_used != idx) {
      uint16_t v;
      uint32_t slot = take(&v);
      if (lat) lat[done] = now - made_available_at[slot];
      done++;
      if (sent < total) {
        add(slot, (uint16_t)slot);
        made_available_at[slot] = now;
        sent++;
      }
    }
    if (avail_idx != kicked_at) publish();
  }
  return total;
}

/* The back-end must complete something every WATCHDOG_S seconds while we wait (a blocking read
 * of the call eventfd would otherwise hang forever); armed only while a measurement runs. */
static uint64_t completed_at_alarm;
static void watchdog(int sig) {
  (void)sig;
  if (completed == completed_at_alarm) {
    static const char m[] = "vgpio_bench_frontend: no completion for " "10" " s: the back-end stopped answering\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(1);
  }
  completed_at_alarm = completed;
  alarm(WATCHDOG_S);
}
static void watch(int on) {
  completed_at_alarm = completed;
  alarm(on ? WATCHDOG_S : 0);
}

/* ---- set-up ---- */

static void connect_socket(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) die("socket path too long: %s", path);
  strcpy(a.sun_path, path);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket: %s", strerror(errno));
  if (connect(sock, (struct sockaddr *)&a, sizeof a) < 0) die("cannot connect to %s: %s", path, strerror(errno));
  struct timeval tv = {REPLY_TIMEOUT_S, 0}; /* a back-end that never answers is an error, not a hang */
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static uint64_t features;

static void start(const char *path, int want_event_idx, uint32_t want_qsize) {
  connect_socket(path);
  uint64_t offered = get_u64(GET_FEATURES);
  if (!(offered & F_VERSION_1)) die("back-end does not offer VIRTIO_F_VERSION_1 (features 0x%llx)", (unsigned long long)offered);
  proto_on = (offered & F_PROTOCOL_FEATURES) != 0;
  if (proto_on) {
    uint64_t offered_proto = get_u64(GET_PROTOCOL_FEATURES);
    protocol = offered_proto & (PF_REPLY_ACK | PF_CONFIG);
    send_msg(SET_PROTOCOL_FEATURES, FLAG_VERSION, &protocol, 8, NULL, 0);
  }
  configure(SET_OWNER, NULL, 0, NULL, 0);
  if (!(protocol & PF_CONFIG)) die("back-end does not offer the CONFIG protocol feature: cannot read ngpio");
  {
    unsigned char req[12 + 8] = {0};
    uint32_t size = 8;
    memcpy(req + 4, &size, 4);
    send_msg(GET_CONFIG, FLAG_VERSION, req, sizeof req, NULL, 0);
    unsigned char r[12 + 256];
    uint32_t n = reply(GET_CONFIG, r, sizeof r);
    uint32_t rsize;
    memcpy(&rsize, r + 4, 4);
    if (n != sizeof req || rsize != 8) die("GET_CONFIG reply has %u bytes (size %u), expected 20 (size 8)", n, rsize);
    uint16_t ng;
    memcpy(&ng, r + 12, 2);
    ngpio = ng;
    if (ngpio == 0) die("config space says ngpio 0");
  }
  if (want_event_idx && !(offered & F_EVENT_IDX)) die("--event-idx: back-end does not offer VIRTIO_F_EVENT_IDX");
  event_idx = want_event_idx;
  features = F_VERSION_1 | (event_idx ? F_EVENT_IDX : 0);
  uint64_t set = features | (proto_on ? F_PROTOCOL_FEATURES : 0);
  (void)VIRTIO_GPIO_F_IRQ; /* never negotiated: no eventq */
  configure(SET_FEATURES, &set, 8, NULL, 0);

  int memfd = memfd_create("vgpio-bench-guest", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, MEMORY_BYTES) < 0) die("memfd: %s", strerror(errno));
  mem = mmap(NULL, MEMORY_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (mem == MAP_FAILED) die("mmap: %s", strerror(errno));
  {
    uint64_t table[2 + 4] = {0};
    uint32_t count = 1;
    memcpy(table, &count, 4);
    table[1] = GUEST_BASE;
    table[2] = MEMORY_BYTES;
    table[3] = (uint64_t)(uintptr_t)mem; /* user address: ours */
    table[4] = 0;
    configure(SET_MEM_TABLE, table, 8 + 32, &memfd, 1);
  }
  close(memfd);

  qsize = want_qsize;
  ring_layout();
  kick_fd = eventfd(0, EFD_CLOEXEC);
  call_fd = eventfd(0, EFD_CLOEXEC);
  if (kick_fd < 0 || call_fd < 0) die("eventfd: %s", strerror(errno));
  vring_state(SET_VRING_NUM, 0, qsize);
  vring_state(SET_VRING_BASE, 0, 0);
  {
    uint32_t a[10] = {0}; /* index, flags, desc, used, avail, log (u64s from a[2]) */
    uint64_t d = (uint64_t)(uintptr_t)desc, u = (uint64_t)(uintptr_t)used_hdr, av = (uint64_t)(uintptr_t)avail;
    memcpy(&a[2], &d, 8);
    memcpy(&a[4], &u, 8);
    memcpy(&a[6], &av, 8);
    configure(SET_VRING_ADDR, a, 40, NULL, 0);
  }
  uint64_t q0 = 0;
  configure(SET_VRING_KICK, &q0, 8, &kick_fd, 1);
  configure(SET_VRING_CALL, &q0, 8, &call_fd, 1);
  if (proto_on) vring_state(SET_VRING_ENABLE, 0, 1);
}

/* SET_VRING_ENABLE 0, GET_VRING_BASE: the ring must have stopped where we are. */
static uint16_t stop(void) {
  if (avail_idx != last_used) die("internal: %u requests still in flight", (uint16_t)(avail_idx - last_used));
  if (proto_on) vring_state(SET_VRING_ENABLE, 0, 0);
  uint32_t st[2] = {0, 0};
  send_msg(GET_VRING_BASE, FLAG_VERSION, st, sizeof st, NULL, 0);
  uint32_t r[2];
  uint32_t n = reply(GET_VRING_BASE, r, sizeof r);
  if (n != 8) die("GET_VRING_BASE reply has %u bytes, expected 8", n);
  if (r[1] != avail_idx) die("GET_VRING_BASE says the ring stopped at %u, we made %u available", r[1], avail_idx);
  return (uint16_t)r[1];
}

/* ---- output ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
/* nearest-rank percentile of sorted samples, in µs (as src/bench/percentiles.ts) */
static double pct(const uint64_t *s, long n, double p) {
  long r = (long)((p / 100.0) * (double)n + 0.999999999);
  if (r < 1) r = 1;
  if (r > n) r = n;
  return (double)s[r - 1] / 1000.0;
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void usage(void) {
  fprintf(stderr,
          "usage: %s --socket PATH [--iterations N] [--warmup N] [--in-flight 1,8,64] [--cpu C]\n"
          "       [--spin] [--event-idx] [--queue-size Q] [--json] [--commands]\n",
          prog);
  exit(2);
}

static long number(const char *s, const char *flag, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < min || v > max) {
    fprintf(stderr, "%s: %s must be an integer in [%ld, %ld] (got %s)\n", prog, flag, min, max, s);
    exit(2);
  }
  return v;
}

static void commands(void) {
  printf("ready ngpio=%u features=0x%llx protocol=0x%llx queue=%u\n", ngpio, (unsigned long long)features,
         (unsigned long long)protocol, qsize);
  fflush(stdout);
  char line[256];
  uint64_t *ns = NULL;
  long cap = 0;
  while (fgets(line, sizeof line, stdin)) {
    long a, b;
    char extra;
    if (sscanf(line, "rt %ld %c", &a, &extra) == 1 && a >= 1) {
      if (a > cap) {
        free(ns);
        ns = malloc(sizeof *ns * (size_t)a);
        if (!ns) die("out of memory");
        cap = a;
      }
      uint64_t c0 = CPU();
      watch(1);
      round_trips(ns, a);
      watch(0);
      printf("rt %llu", (unsigned long long)(CPU() - c0));
      for (long i = 0; i < a; i++) printf(" %llu", (unsigned long long)ns[i]);
      putchar('\n');
    } else if ((sscanf(line, "tp %ld %ld %c", &a, &b, &extra) == 2 ||
                sscanf(line, "tpl %ld %ld %c", &a, &b, &extra) == 2) &&
               a >= 1 && b >= 1) {
      int with_latency = line[2] == 'l';
      if ((uint32_t)a > ngpio || (uint32_t)a > qsize / 2)
        die("tp %ld: at most min(ngpio %u, queue size / 2 = %u) lines in flight", a, ngpio, qsize / 2);
      long need = with_latency ? (b + a - 1) / a * a : 0;
      if (need > cap) {
        free(ns);
        ns = malloc(sizeof *ns * (size_t)need);
        if (!ns) die("out of memory");
        cap = need;
      }
      uint64_t c0 = CPU(), t0 = NOW();
      watch(1);
      uint64_t total = throughput((uint32_t)a, (uint64_t)b, with_latency ? ns : NULL);
      watch(0);
      uint64_t t1 = NOW(), c1 = CPU();
      printf("%s %ld %llu %llu %llu", with_latency ? "tpl" : "tp", a, (unsigned long long)total,
             (unsigned long long)(t1 - t0), (unsigned long long)(c1 - c0));
      for (long i = 0; i < need; i++) printf(" %llu", (unsigned long long)ns[i]);
      putchar('\n');
    } else if (sscanf(line, "values %ld %c", &a, &extra) == 1 && a >= 1) {
      if ((uint32_t)a > ngpio) die("values %ld: the back-end has %u lines", a, ngpio);
      printf("values");
      watch(1);
      for (long i = 0; i < a; i++) printf(" %u", get_value((uint16_t)i));
      watch(0);
      putchar('\n');
    } else if (sscanf(line, "inputs %ld %c", &a, &extra) == 1 && a >= 1) {
      if ((uint32_t)a > ngpio) die("inputs %ld: the back-end has %u lines", a, ngpio);
      watch(1);
      set_inputs((uint32_t)a);
      watch(0);
      printf("inputs %ld\n", a);
    } else if (strcmp(line, "quit\n") == 0 || strcmp(line, "quit") == 0) {
      break;
    } else {
      die("unknown command: %.*s", (int)strcspn(line, "\n"), line);
    }
    fflush(stdout);
  }
  uint16_t base = stop();
  printf("bye base=%u cpu=%d kicks=%llu suppressed=%llu\n", base, sched_getcpu(), (unsigned long long)kicks_sent,
         (unsigned long long)kicks_suppressed);
  free(ns);
}

int main(int argc, char **argv) {
  const char *path = NULL, *in_flight = "1,8,64";
  long iterations = 20000, warmup = 1000, cpu = -1, want_qsize = 256;
  int json = 0, cmd = 0, want_event_idx = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int flag = strcmp(a, "--spin") == 0 || strcmp(a, "--event-idx") == 0 || strcmp(a, "--json") == 0 ||
               strcmp(a, "--commands") == 0;
    if (flag) {
      if (strcmp(a, "--spin") == 0) spin = 1;
      else if (strcmp(a, "--event-idx") == 0) want_event_idx = 1;
      else if (strcmp(a, "--json") == 0) json = 1;
      else cmd = 1;
      continue;
    }
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(a, "--socket") == 0) path = v;
    else if (strcmp(a, "--iterations") == 0) iterations = number(v, a, 1, 100000000);
    else if (strcmp(a, "--warmup") == 0) warmup = number(v, a, 0, 100000000);
    else if (strcmp(a, "--in-flight") == 0) in_flight = v;
    else if (strcmp(a, "--cpu") == 0) cpu = number(v, a, 0, CPU_SETSIZE - 1);
    else if (strcmp(a, "--queue-size") == 0) want_qsize = number(v, a, 2, MAX_QUEUE);
    else {
      fprintf(stderr, "%s: unknown argument %s\n", prog, a);
      usage();
    }
  }
  if (!path) usage();
  if (want_qsize & (want_qsize - 1)) {
    fprintf(stderr, "%s: --queue-size must be a power of two (got %ld)\n", prog, want_qsize);
    exit(2);
  }
  uint32_t ks[16];
  int nk = 0;
  for (const char *p = in_flight; *p;) {
    char *end;
    long k = strtol(p, &end, 10);
    if (end == p || k < 1 || k > want_qsize / 2 || nk == 16 || (*end && *end != ',')) {
      fprintf(stderr, "%s: --in-flight: a list of up to 16 counts in [1, %ld] (got %s)\n", prog, want_qsize / 2,
              in_flight);
      exit(2);
    }
    ks[nk++] = (uint32_t)k;
    p = *end ? end + 1 : end;
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity(%ld): %s", cpu, strerror(errno));
  }
  signal(SIGALRM, watchdog);
  start(path, want_event_idx, (uint32_t)want_qsize);
  if (cmd) {
    commands();
    return 0;
  }

  uint32_t nv = 0;
  for (int i = 0; i < nk; i++) nv = ks[i] > nv ? ks[i] : nv;
  if (nv > ngpio) nv = ngpio;
  watch(1);
  set_inputs(nv);
  round_trips(NULL, warmup);
  uint64_t *ns = malloc(sizeof *ns * (size_t)iterations);
  if (!ns) die("out of memory");
  uint64_t c0 = CPU();
  round_trips(ns, iterations);
  uint64_t rt_cpu = CPU() - c0;
  qsort(ns, (size_t)iterations, sizeof *ns, cmp_u64);
  uint16_t values[MAX_QUEUE / 2];
  for (uint32_t i = 0; i < nv; i++) values[i] = get_value((uint16_t)i);
  struct {
    uint32_t k;
    uint64_t requests, wall, cpu;
  } tp[16];
  for (int i = 0; i < nk; i++) {
    uint32_t k = ks[i] > ngpio ? ngpio : ks[i];
    uint64_t a = CPU(), t0 = NOW();
    tp[i].requests = throughput(k, (uint64_t)iterations, NULL);
    tp[i].wall = NOW() - t0;
    tp[i].cpu = CPU() - a;
    tp[i].k = k;
  }
  watch(0);
  uint16_t base = stop();
  int on = sched_getcpu();
  if (json) {
    printf("{\"socket\":");
    json_string(path);
    printf(",\"ngpio\":%u,\"features\":%llu,\"protocolFeatures\":%llu,\"queueSize\":%u,"
           "\"wait\":\"%s\",\"cpu\":%d,\"roundTrip\":{\"n\":%ld,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"max\":%.3f,\"cpuUsPerRequest\":%.3f},\"values\":[",
           ngpio, (unsigned long long)features, (unsigned long long)protocol, qsize,
           spin ? "spin" : "read", on, iterations, pct(ns, iterations, 50), pct(ns, iterations, 90),
           pct(ns, iterations, 99), pct(ns, iterations, 100), (double)rt_cpu / 1000.0 / (double)iterations);
    for (uint32_t i = 0; i < nv; i++) printf("%s%u", i ? "," : "", values[i]);
    printf("],\"throughput\":[");
    for (int i = 0; i < nk; i++)
      printf("%s{\"linesInFlight\":%u,\"requests\":%llu,\"requestsPerSec\":%.0f,\"cpuUsPerRequest\":%.3f}",
             i ? "," : "", tp[i].k, (unsigned long long)tp[i].requests,
             (double)tp[i].requests * 1e9 / (double)tp[i].wall, (double)tp[i].cpu / 1000.0 / (double)tp[i].requests);
    printf("],\"stoppedAt\":%u,\"kicks\":%llu,\"kicksSuppressed\":%llu}\n", base, (unsigned long long)kicks_sent,
           (unsigned long long)kicks_suppressed);
  } else {
    printf("%s: ngpio %u, queue %u, waiting by %s, on CPU %d\n", path, ngpio, qsize, spin ? "spinning" : "read(2)", on);
    printf("GET_VALUE round trip: n %ld  p50 %.1f µs  p90 %.1f µs  p99 %.1f µs  max %.1f µs\n", iterations,
           pct(ns, iterations, 50), pct(ns, iterations, 90), pct(ns, iterations, 99), pct(ns, iterations, 100));
    for (int i = 0; i < nk; i++)
      printf("GET_VALUE, %u line(s) in flight: %llu requests, %.0f requests/s, front-end CPU %.2f µs/request\n",
             tp[i].k, (unsigned long long)tp[i].requests, (double)tp[i].requests * 1e9 / (double)tp[i].wall,
             (double)tp[i].cpu / 1000.0 / (double)tp[i].requests);
    printf("values of lines 0..%u:", nv - 1);
    for (uint32_t i = 0; i < nv; i++) printf(" %u", values[i]);
    putchar('\n');
  }
  free(ns);
  return 0;
}
