/* memfd, seals, mmap/munmap as external ArrayBuffers, and the SIGBUS guard
 * over every mapping made here. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Node 20 cannot create an ArrayBuffer over external memory larger than
 * v8::TypedArray::kMaxLength (2^32 on 64-bit). */
#define MAX_MAPPING_LENGTH 4294967296.0

/* ------------------------------------------------------------------------ */
/* SIGBUS guard                                                             */
/* ------------------------------------------------------------------------ */

/*
 * A MAP_SHARED mapping of a file raises SIGBUS when a page beyond the file's
 * current end is touched. A vhost-user front-end owns the memfd behind guest
 * memory and can ftruncate it after SET_MEM_TABLE; unguarded, the first touch
 * kills the process and every device in it.
 *
 * The guard: a process-wide SIGBUS handler (SA_SIGINFO | SA_ONSTACK) that
 * looks the fault address up in the table of mappings made by mmap() below.
 * Inside one, it maps anonymous zero pages (MAP_FIXED | MAP_PRIVATE) from the
 * faulting page to the end of the mapping, so the access completes (reads
 * give zeros, writes go nowhere), sets the mapping's `faulted` flag and bumps
 * `fault_count`, which JS reads through a shared Int32Array without a call.
 * Any other SIGBUS (outside our mappings, or sent by kill) goes to the
 * handler that was installed before ours, or, if that was SIG_DFL/SIG_IGN,
 * the default action is restored and the fault re-executes (a sent signal is
 * re-raised unless it was ignored): the process dies as it would have.
 *
 * Trade-offs
 *  - Signal safety: the handler only reads the table (atomics), calls mmap(2)
 *    (a raw syscall, not on POSIX's async-signal-safe list but safe on Linux:
 *    no locks, no allocation) and sigaction(2). The table grows in chunks
 *    that are never freed, so the handler never follows freed memory; mmap()
 *    fails with ENOSPC when it is full rather than map unguarded.
 *  - Slot updates are ordered (end before start when adding, end cleared
 *    first when removing) but not a transaction: a fault racing a munmap of
 *    the same range, on another thread, could be attributed to a slot a
 *    moment stale. Faults come from one thread's accesses to its own
 *    mappings, so this needs a bug on top of an attack.
 *  - V8 installs no SIGBUS handler (its WebAssembly trap handler uses
 *    SIGSEGV), Node neither; a handler installed later by someone else and
 *    not chaining to ours disables the guard.
 *  - Cost: none on the access path; a slot claim per mmap, a table scan per
 *    fault. A fault costs a signal delivery and one mmap.
 *  - The recovered range reads as zeros, which a device model may act on
 *    before the caller looks at the flag: callers check the flag after every
 *    batch of guest-memory accesses and drop the device (the memory it saw is
 *    not the guest's any more).
 *  - The handler lives in this shared object, which is therefore never
 *    unloaded once installed (RTLD_NODELETE, see keep_addon_loaded).
 */
#define CHUNK_SLOTS 1024
#define MAX_CHUNKS 64 /* 65536 mappings: vm.max_map_count's default is 65530 */
#define SLOT_CLAIMED 1 /* start value of a slot being filled in */

typedef struct {
  _Atomic uintptr_t start; /* 0: free */
  _Atomic uintptr_t end;
  _Atomic int prot;
  _Atomic int faulted;
} guarded_range_t;

/* Chunks are allocated on demand and never freed, so the handler can walk
 * them at any moment. */
static guarded_range_t *_Atomic chunks[MAX_CHUNKS];
static _Atomic int32_t fault_count; /* read by JS through an Int32Array */
static struct sigaction previous_sigbus;
static uintptr_t page_mask;
static pthread_once_t sigbus_once = PTHREAD_ONCE_INIT;
static int sigbus_error; /* errno of a failed installation */

static void sigbus_fall_through(int sig, siginfo_t *si, void *uc) {
  struct sigaction dfl;
  if (previous_sigbus.sa_flags & SA_SIGINFO) {
    previous_sigbus.sa_sigaction(sig, si, uc);
    return;
  }
  if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN) {
    previous_sigbus.sa_handler(sig);
    return;
  }
  if (si->si_code <= 0 && previous_sigbus.sa_handler == SIG_IGN) return; /* sent, and ignored before us */
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, NULL);
  /* A fault re-executes and now kills; a sent signal is sent again (blocked
   * until this handler returns). */
  if (si->si_code <= 0) raise(sig);
}

/* Maps zero pages from the faulting page to the end of the mapping holding
 * `addr`; false if no mapping of ours holds it. */
static bool recover(uintptr_t addr) {
  size_t c, i;
  for (c = 0; c < MAX_CHUNKS; c++) {
    guarded_range_t *chunk = atomic_load(&chunks[c]);
    if (chunk == NULL) return false;
    for (i = 0; i < CHUNK_SLOTS; i++) {
      guarded_range_t *r = &chunk[i];
      uintptr_t start = atomic_load(&r->start), end = atomic_load(&r->end), page = addr & page_mask;
      if (start <= SLOT_CLAIMED || addr < start || addr >= end) continue;
      if (mmap((void *)page, end - page, atomic_load(&r->prot), MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1,
               0) == MAP_FAILED)
        return false;
      atomic_store(&r->faulted, 1);
      atomic_fetch_add(&fault_count, 1);
      return true;
    }
  }
  return false;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  int saved_errno = errno;
  /* si_code > 0: raised by the kernel for this access, not sent by kill() */
  bool recovered = si->si_code > 0 && recover((uintptr_t)si->si_addr);
  errno = saved_errno;
  if (!recovered) sigbus_fall_through(sig, si, uc);
}

static void sigbus_install(void) {
  struct sigaction sa;
  long page = sysconf(_SC_PAGESIZE);
  page_mask = ~((uintptr_t)(page > 0 ? page : 4096) - 1);
  keep_addon_loaded();
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, &previous_sigbus) < 0) sigbus_error = errno;
}

/* A claimed slot for [addr, addr + len), or NULL (table full, or no memory). */
static guarded_range_t *guard_add(void *addr, size_t len, int prot) {
  size_t c, i;
  for (c = 0; c < MAX_CHUNKS; c++) {
    guarded_range_t *chunk = atomic_load(&chunks[c]);
    if (chunk == NULL) {
      guarded_range_t *fresh = calloc(CHUNK_SLOTS, sizeof *fresh), *none = NULL;
      if (fresh == NULL) return NULL;
      if (atomic_compare_exchange_strong(&chunks[c], &none, fresh))
        chunk = fresh;
      else
        free(fresh), chunk = none; /* another thread published one first */
    }
    for (i = 0; i < CHUNK_SLOTS; i++) {
      guarded_range_t *r = &chunk[i];
      uintptr_t expected = 0;
      if (atomic_load_explicit(&r->start, memory_order_relaxed) != 0 ||
          !atomic_compare_exchange_strong(&r->start, &expected, SLOT_CLAIMED))
        continue;
      atomic_store(&r->faulted, 0);
      atomic_store(&r->prot, prot);
      atomic_store(&r->end, (uintptr_t)addr + len);
      atomic_store(&r->start, (uintptr_t)addr);
      return r;
    }
  }
  return NULL;
}

static void guard_remove(guarded_range_t *r) {
  atomic_store(&r->end, 0);
  atomic_store(&r->start, 0);
}

/* faultCounter(): ArrayBuffer (4 bytes: an int32, the number of SIGBUS faults
 * survived in this process; JS reads it with Atomics.load) */
napi_value js_fault_counter(napi_env env, napi_callback_info info) {
  napi_value ab;
  (void)info;
  NAPI_CALL(env, napi_create_external_arraybuffer(env, (void *)&fault_count, sizeof fault_count, NULL, NULL, &ab));
  return ab;
}

/* ------------------------------------------------------------------------ */
/* memfd and seals                                                          */
/* ------------------------------------------------------------------------ */

static const struct {
  const char *name;
  int bit;
} SEALS[] = {
    {"seal", F_SEAL_SEAL},   {"shrink", F_SEAL_SHRINK},       {"grow", F_SEAL_GROW},
    {"write", F_SEAL_WRITE}, {"future-write", F_SEAL_FUTURE_WRITE},
};
#define SEAL_COUNT (sizeof SEALS / sizeof SEALS[0])

/* seals: an array of names from SEALS; false with a pending exception. */
static bool arg_seals(napi_env env, napi_value v, int *out) {
  bool is_array = false;
  uint32_t n, i;
  size_t k;
  *out = 0;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array)
    return throw_type(env, "seals", "an array of seal names"), false;
  if (napi_get_array_length(env, v, &n) != napi_ok) return throw_napi_failure(env, "napi_get_array_length"), false;
  for (i = 0; i < n; i++) {
    napi_value el;
    char name[16];
    size_t len = 0;
    if (napi_get_element(env, v, i, &el) != napi_ok ||
        napi_get_value_string_utf8(env, el, name, sizeof name, &len) != napi_ok)
      return throw_type(env, "seals[i]", "of type string"), false;
    for (k = 0; k < SEAL_COUNT && strcmp(name, SEALS[k].name) != 0; k++);
    if (k == SEAL_COUNT)
      return throw_range(env, "seals[i]", "one of seal, shrink, grow, write, future-write"), false;
    *out |= SEALS[k].bit;
  }
  return true;
}

/* memfdCreate(name: string, size: number, seals?: string[]): number. With
 * seals, the memfd allows sealing and gets them after ftruncate. */
napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[256];
  size_t len = 0;
  uint64_t size;
  int fd, r, seals = 0;
  bool sealing;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok)
    return throw_type(env, "name", "of type string");
  if (!arg_uint(env, argv[1], "size", MAX_SAFE_INT, &size)) return NULL;
  sealing = !is_undefined(env, argv[2]);
  if (sealing && !arg_seals(env, argv[2], &seals)) return NULL;
  /* The kernel limit is 249 bytes; longer names get EINVAL from it or here. */
  if (len >= sizeof name) return throw_errno(env, "memfd_create", EINVAL);
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  if (memchr(name, '\0', len) != NULL) return throw_errno(env, "memfd_create", EINVAL);
  fd = memfd_create(name, MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  do r = ftruncate(fd, (off_t)size);
  while (r < 0 && errno == EINTR);
  if (r < 0) return close_and_throw(env, fd, "ftruncate", errno);
  if (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) < 0) return close_and_throw(env, fd, "fcntl", errno);
  return return_fd(env, fd);
}

/* fdSeals(fd: number): string[] | null (null: the file cannot be sealed) */
napi_value js_fd_seals(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, el;
  int32_t fd;
  int seals;
  uint32_t n = 0;
  size_t k;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return errno == EINVAL ? get_null(env) : throw_errno(env, "fcntl", errno);
  NAPI_CALL(env, napi_create_array(env, &arr));
  for (k = 0; k < SEAL_COUNT; k++) {
    if (!(seals & SEALS[k].bit)) continue;
    NAPI_CALL(env, napi_create_string_utf8(env, SEALS[k].name, NAPI_AUTO_LENGTH, &el));
    NAPI_CALL(env, napi_set_element(env, arr, n++, el));
  }
  return arr;
}

/* fdSize(fd: number): number */
napi_value js_fd_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct stat st;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (fstat(fd, &st) < 0) return throw_errno(env, "fstat", errno);
  return make_number(env, (double)st.st_size);
}

/* ------------------------------------------------------------------------ */
/* mmap / munmap                                                            */
/* ------------------------------------------------------------------------ */

/* State shared by munmap() and the ArrayBuffer's finalizer (its hint). The
 * finalizer runs exactly once, after the backing store is released (either
 * because munmap() detached the buffer or because it was collected); it
 * unmaps only if munmap() has not, and always frees this struct. */
typedef struct {
  void *addr;
  size_t len;
  guarded_range_t *guard;
  bool mapped;
} mapping_t;

/* Marks ArrayBuffers created by mmap(), so munmap() can trust napi_unwrap. */
static const napi_type_tag MAPPING_TAG = {0x8f3c2a6e5b1d4c07ULL, 0xa4e19b7d03c65f21ULL};

static void unmap(mapping_t *m) {
  munmap(m->addr, m->len);
  guard_remove(m->guard); /* after munmap: a fault until then is still ours */
  m->mapped = false;
}

static void mapping_finalize(napi_env env, void *data, void *hint) {
  mapping_t *m = hint;
  int64_t unused;
  (void)data;
  if (m->mapped) {
    unmap(m);
    napi_adjust_external_memory(env, -(int64_t)m->len, &unused);
  }
  free(m);
}

/* mmap(fd: number, length: number, offset: number, writable = true): ArrayBuffer */
napi_value js_mmap(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], ab;
  int32_t fd;
  uint64_t length, offset;
  bool writable;
  long page = sysconf(_SC_PAGESIZE);
  int prot;
  guarded_range_t *guard;
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
  pthread_once(&sigbus_once, sigbus_install);
  if (sigbus_error != 0) return throw_errno(env, "sigaction", sigbus_error);

  prot = PROT_READ | (writable ? PROT_WRITE : 0);
  m = malloc(sizeof *m);
  if (m == NULL) return throw_errno(env, "mmap", ENOMEM);
  addr = mmap(NULL, length, prot, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) {
    int err = errno;
    free(m);
    return throw_errno(env, "mmap", err);
  }
  guard = guard_add(addr, length, prot);
  if (guard == NULL) {
    munmap(addr, length);
    free(m);
    return throw_custom(env, "ENOSPC", ENOSPC, "mmap", "no room to guard another mapping (65536)");
  }
  m->addr = addr;
  m->len = length;
  m->guard = guard;
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

/* The live mapping behind `buf`, or NULL with a pending exception (TypeError
 * for a foreign buffer, EALREADY once unmapped or otherwise detached). */
static mapping_t *mapping_of(napi_env env, napi_value buf, const char *syscall) {
  bool is_ab = false, tagged = false, detached = false;
  void *p = NULL;
  if (napi_is_arraybuffer(env, buf, &is_ab) != napi_ok || !is_ab ||
      napi_check_object_type_tag(env, buf, &MAPPING_TAG, &tagged) != napi_ok || !tagged)
    return throw_type(env, "buf", "an ArrayBuffer returned by mmap()"), NULL;
  /* A detached buffer's mapping_t may already have been freed by the
   * finalizer, so check this before touching it. */
  if (napi_is_detached_arraybuffer(env, buf, &detached) != napi_ok || detached ||
      napi_unwrap(env, buf, &p) != napi_ok || !((mapping_t *)p)->mapped)
    return throw_custom(env, "EALREADY", EALREADY, syscall, "mapping already unmapped"), NULL;
  return p;
}

/* munmap(buf: ArrayBuffer): void. Throws code 'EALREADY' when the buffer has
 * already been unmapped (or otherwise detached). */
napi_value js_munmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  mapping_t *m, copy;
  int64_t unused;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  m = mapping_of(env, argv[0], "munmap");
  if (m == NULL) return NULL;
  copy = *m;
  m->mapped = false; /* the finalizer must not unmap from now on */
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) {
    m->mapped = true; /* still reachable from JS: leave it mapped */
    return throw_napi_failure(env, "napi_detach_arraybuffer");
  }
  /* Every view now has byteLength 0. Do not touch `m` any more: the
   * finalizer may free it as soon as the backing store is released. */
  napi_adjust_external_memory(env, -(int64_t)copy.len, &unused);
  if (munmap(copy.addr, copy.len) < 0) {
    int err = errno;
    guard_remove(copy.guard);
    return throw_errno(env, "munmap", err);
  }
  guard_remove(copy.guard);
  return NULL;
}

/* mappingFaulted(buf: ArrayBuffer): boolean — a SIGBUS inside it was survived */
napi_value js_mapping_faulted(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  mapping_t *m;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  m = mapping_of(env, argv[0], "mappingFaulted");
  if (m == NULL) return NULL;
  return make_bool(env, atomic_load(&m->guard->faulted) != 0);
}
