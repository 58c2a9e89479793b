/**
 * Typed wrapper around the `vgpio_native` N-API addon (native/*.c, one file per concern; shim.h
 * lists them), a thin Linux OS shim: AF_UNIX sockets with SCM_RIGHTS and peer credentials,
 * descriptors and eventfds whose read and write never block, memfd/seals/mmap with a SIGBUS guard,
 * CPU affinity and a libuv fd poller. No protocol logic lives here. The binary is found by
 * node-gyp-build from the package root: a local `build/Release` first, else
 * `prebuilds/<platform>-<arch>` ({@link resolveAddon}).
 *
 * Conventions:
 * - A failing system call throws a {@link SyscallError}: `code` is the errno name
 *   ('ENOENT'), `errno` the positive errno number, `syscall` the call name, and
 *   the message reads `connect: ENOENT (No such file or directory)`.
 * - Invalid argument types throw `TypeError` (code 'ERR_INVALID_ARG_TYPE'); out-of-range
 *   arguments throw `RangeError` (code 'ERR_OUT_OF_RANGE').
 * - Functions documented as "null on EAGAIN" return `null` instead of throwing EAGAIN.
 * - Every descriptor is created close-on-exec; EINTR is retried internally.
 * - Everything runs synchronously on the calling (JS) thread, never on libuv's threadpool. Two
 *   process-wide signal handlers are installed on first use: SIGRTMAX-1 (the eventfd write guard,
 *   see {@link eventfdWrite}) and SIGBUS (the mapping guard, see {@link mmap}).
 */
import { existsSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Error thrown for a failing system call. */
export interface SyscallError extends Error {
  /** errno name, e.g. 'ENOENT'. */
  code: string;
  /** Positive errno number, e.g. 2. */
  errno: number;
  /** Name of the failing call, e.g. 'connect'. */
  syscall: string;
}

/** True if `err` is a {@link SyscallError} (optionally with the given code). */
export function isSyscallError(err: unknown, code?: string): err is SyscallError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<SyscallError>;
  return (
    typeof e.code === 'string' &&
    typeof e.errno === 'number' &&
    typeof e.syscall === 'string' &&
    (code === undefined || e.code === code)
  );
}

/** The process at the other end of a connected AF_UNIX socket, from {@link peerCredentials}. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Result of {@link recvMsg}. */
export interface RecvMsgResult {
  /** Received bytes; length 0 means EOF (peer closed). */
  data: Buffer;
  /** Descriptors received via SCM_RIGHTS (already close-on-exec). The caller owns them. */
  fds: number[];
  /** MSG_CTRUNC or MSG_TRUNC was set: some descriptors (or datagram bytes) were dropped. */
  truncated: boolean;
}

/**
 * Callback of an {@link FdPoller}. `err` is non-null only if libuv reported an error
 * (e.g. POLLERR surfaces as 'EBADF') or, with `drainEventfd`, the read failed (e.g. 'EIO': not an
 * eventfd); the poller is then already stopped. With `drainEventfd`, `count` is the counter the
 * addon read (and so reset) before calling.
 */
export type FdPollerCallback = (
  err: Error | null,
  readable: boolean,
  writable: boolean,
  count?: bigint,
) => void;

/** Options of an {@link FdPoller}. */
export interface FdPollerOptions {
  /**
   * The fd is an eventfd: when it is readable, the addon reads it (never blocking, like
   * {@link eventfdRead}) and passes the count, saving a call per wake-up; a wake-up that finds
   * the counter already at 0 does not call back at all.
   */
  drainEventfd?: boolean;
}

/**
 * A libuv `uv_poll_t` on the main event loop, watching one descriptor.
 *
 * - Level-triggered: while the condition holds, the callback runs again on every loop
 *   iteration, so the callback must drain the descriptor (read until EAGAIN / null) or
 *   stop the poller. An eventfd is drained by one read: pass `{ drainEventfd: true }` and the
 *   addon does it.
 * - The constructor puts `fd` into non-blocking mode (libuv does this). Only one
 *   poller per descriptor (libuv refuses a second with 'EEXIST').
 * - Stop or close the poller *before* closing its descriptor ({@link closeFd} refuses with
 *   'EBUSY' while a started poller watches the fd; other ways of closing it are not checked).
 * - While started the poller keeps itself (and its callback) alive; a stopped or closed
 *   poller can be garbage-collected, which closes the libuv handle.
 * - Pollers still open when the environment ends (process or worker-thread exit) are
 *   closed by the addon's cleanup hook.
 */
export interface FdPoller {
  /** Start (or change) polling. `start(false, false)` is the same as `stop()`. Throws 'ERR_POLLER_CLOSED' after close(). */
  start(readable?: boolean, writable?: boolean): void;
  /** Stop polling; no-op if stopped or closed. */
  stop(): void;
  /** Close the libuv handle; idempotent. No callback runs after close() returns. */
  close(): void;
  /** Let the poller keep the event loop alive while started (the default). */
  ref(): void;
  /** Do not keep the event loop alive because of this poller. */
  unref(): void;
  /** The callback passed to the constructor (read-only). */
  readonly callback: FdPollerCallback;
}

export interface FdPollerConstructor {
  new (fd: number, callback: FdPollerCallback, options?: FdPollerOptions): FdPoller;
  readonly prototype: FdPoller;
}

/** Shape of the raw addon exports. */
export interface NativeBinding {
  socketListen(path: string, backlog: number): number;
  socketAccept(fd: number): number | null;
  socketConnect(path: string): number;
  socketPair(): [number, number];
  peerCredentials(fd: number): PeerCredentials;
  sendMsg(fd: number, data: Uint8Array, fds?: readonly number[]): number | null;
  recvMsg(fd: number, maxBytes: number, maxFds?: number): RecvMsgResult | null;
  closeFd(fd: number): void;
  closeNoWait(fd: number): 'now' | 'background';
  setNonBlocking(fd: number, on: boolean): void;
  eventfd(initval: number, nonblock?: boolean, semaphore?: boolean): number;
  eventfdRead(fd: number): bigint | null;
  eventfdWrite(fd: number, value?: bigint): boolean;
  memfdCreate(name: string, size: number, seals?: readonly FdSeal[]): number;
  fdSize(fd: number): number;
  fdSeals(fd: number): FdSeal[] | null;
  mmap(fd: number, length: number, offset: number, writable?: boolean): ArrayBuffer;
  munmap(buf: ArrayBuffer): void;
  mappingFaulted(buf: ArrayBuffer): boolean;
  faultCounter(): ArrayBuffer;
  getCpu(): number;
  setAffinity(cpus: readonly number[]): void;
  getAffinity(): number[];
  ioctl(fd: number, request: number, arg: ArrayBufferView): number;
  readFd(fd: number, buffer: ArrayBufferView): number | null;
  timerfdCreate(): number;
  timerfdArm(fd: number, deadlineNs: bigint): void;
  timerfdDisarm(fd: number): void;
  timerfdRead(fd: number): bigint | null;
  monotonicNs(): bigint;
  FdPoller: FdPollerConstructor;
}

/** node-gyp-build's two entry points (the package ships no types). */
interface NodeGypBuild {
  (root: string): unknown;
  resolve(root: string): string;
}

const require = createRequire(import.meta.url);

/** The package root: this file runs from src/native/ (tsx) or dist/native/, two levels below it. */
export const packageRoot: string = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Where the addon binary under `root` is: node-gyp-build's choice, i.e. a local build
 * (`build/Release/*.node`, made by `node-gyp rebuild`, fresher than anything shipped) if there is
 * one, else the prebuilt binary matching this platform (`prebuilds/linux-x64/*.node`). When there
 * is neither, throws ONE error that says what is missing and how to get it.
 */
export function resolveAddon(root: string): string {
  try {
    return (require('node-gyp-build') as NodeGypBuild).resolve(root);
  } catch (e) {
    const platform = `${process.platform}-${process.arch}`;
    const error = new Error(
      `vgpio: the native addon is missing: no local build in ${join(root, 'build', 'Release')} and ` +
        `no prebuilt binary for ${platform} (Node ABI ${process.versions.modules}) in ` +
        `${join(root, 'prebuilds')}. To fix it: on linux-x64, install the published vgpio package, ` +
        `which ships prebuilds/linux-x64; elsewhere, install a C compiler, python3 and make ` +
        `(Debian: apt-get install build-essential python3), then reinstall vgpio ` +
        `(\`npm rebuild vgpio\`; in a checkout, \`npm run install\` in ${root}) to compile it.`,
      { cause: e },
    );
    throw Object.assign(error, { code: 'ERR_VGPIO_ADDON_MISSING' });
  }
}

/** Loads the addon found under `root` ({@link resolveAddon}). */
export function loadAddon(root: string): NativeBinding {
  return require(resolveAddon(root)) as NativeBinding;
}

/** Absolute path of the addon binary this module loaded. */
export const addonPath: string = resolveAddon(packageRoot);

const binding = require(addonPath) as NativeBinding;

// ---- sockets -------------------------------------------------------------------------------

/**
 * AF_UNIX SOCK_STREAM listening socket (non-blocking, close-on-exec): socket + bind + listen.
 * Does not unlink an existing path. A path starting with '\0' is a Linux abstract socket.
 * Throws 'ENAMETOOLONG' if the path does not fit sun_path (max 107 bytes).
 */
export function socketListen(path: string, backlog: number): number {
  return binding.socketListen(path, backlog);
}

/** accept4 (non-blocking, close-on-exec); null on EAGAIN. */
export function socketAccept(fd: number): number | null {
  return binding.socketAccept(fd);
}

/**
 * Connect to an AF_UNIX stream socket and return the non-blocking, close-on-exec fd. Never waits:
 * throws 'EAGAIN' when the listener's backlog is full (a blocking connect would sleep until the
 * listener accepts, forever if it never does), 'ECONNREFUSED' when nobody listens.
 */
export function socketConnect(path: string): number {
  return binding.socketConnect(path);
}

/** AF_UNIX SOCK_STREAM socketpair, both ends non-blocking and close-on-exec. */
export function socketPair(): [number, number] {
  return binding.socketPair();
}

/**
 * getsockopt(SO_PEERCRED) on a connected AF_UNIX socket: the peer's pid, uid and gid as of
 * connect(2) / socketpair(2). Throws 'ENOTSOCK' for a descriptor that is not a socket.
 */
export function peerCredentials(fd: number): PeerCredentials {
  return binding.peerCredentials(fd);
}

/**
 * sendmsg with MSG_NOSIGNAL, passing up to 32 descriptors via SCM_RIGHTS. Returns the
 * number of bytes sent (may be partial: the descriptors travel with the first byte),
 * or null on EAGAIN. Sending descriptors requires at least one data byte.
 */
export function sendMsg(fd: number, data: Uint8Array, fds?: readonly number[]): number | null {
  return binding.sendMsg(fd, data, fds);
}

/**
 * recvmsg with MSG_CMSG_CLOEXEC; accepts at most `maxFds` descriptors (default 32, max 253).
 * Returns null on EAGAIN; `data.length === 0` means EOF.
 */
export function recvMsg(fd: number, maxBytes: number, maxFds?: number): RecvMsgResult | null {
  return binding.recvMsg(fd, maxBytes, maxFds);
}

// ---- plain descriptors -----------------------------------------------------------------------

/**
 * close(2); throws 'EBADF' for an invalid descriptor, and 'EBUSY' (without closing) while a
 * started {@link FdPoller} watches `fd` — libuv would otherwise keep a stale watcher for the
 * fd number and misroute events of whichever descriptor reuses it.
 */
export function closeFd(fd: number): void {
  binding.closeFd(fd);
}

/**
 * Closes a descriptor a peer sent us (or any) without ever waiting on another party: close() of a
 * FUSE or NFS file, a tty or a lingering TCP socket can wait on whoever serves it, so those are
 * closed by one background thread ('background'); kinds that never wait (eventfds, pipes, AF_UNIX
 * sockets, tmpfs/memfd and local-disk files) are closed at once ('now'). Throws EBUSY like
 * {@link closeFd} while a started FdPoller watches `fd`, and EAGAIN (the fd stays open) if
 * thousands of such closes are already waiting on the background thread.
 */
export function closeNoWait(fd: number): 'now' | 'background' {
  return binding.closeNoWait(fd);
}

/** {@link closeNoWait} for cleanup paths: an error (EBADF, EBUSY) is ignored. */
export function closeQuietly(fd: number): void {
  try {
    binding.closeNoWait(fd);
  } catch {
    // nothing to do: the descriptor is gone or still polled, and the caller is tearing down
  }
}

/** Set or clear O_NONBLOCK. */
export function setNonBlocking(fd: number, on: boolean): void {
  binding.setNonBlocking(fd, on);
}

// ---- eventfd -------------------------------------------------------------------------------

/** eventfd(2) with EFD_CLOEXEC (plus EFD_NONBLOCK / EFD_SEMAPHORE as requested). */
export function eventfd(initval: number, nonblock = true, semaphore = false): number {
  return binding.eventfd(initval, nonblock, semaphore);
}

/**
 * Read (and reset, or decrement in semaphore mode) the counter; null when it is 0. Never blocks,
 * whatever the fd's O_NONBLOCK flag (which a peer sharing the open file can change at any time):
 * preadv2(RWF_NOWAIT), so the kernel answers EAGAIN under the counter's own lock.
 */
export function eventfdRead(fd: number): bigint | null {
  return binding.eventfdRead(fd);
}

/**
 * Add `value` to the counter; false when that would block (the counter cannot take `value`
 * without passing 2^64 - 2). Never blocks, whatever the fd's O_NONBLOCK flag and whatever a peer
 * does concurrently: poll(POLLOUT) first, then the write under a thread-directed 5 ms timer whose
 * signal interrupts a write that went to sleep (native/fds.c explains the race it closes).
 * Cost: about 3 us per call where a bare write(2) takes 1 us; at worst it returns false after
 * 5-10 ms, only when a peer refills the counter between the poll and the write.
 */
export function eventfdWrite(fd: number, value: bigint = 1n): boolean {
  return binding.eventfdWrite(fd, value);
}

/** What a descriptor refers to, from its /proc/self/fd link. */
export type FdKind = 'eventfd' | 'pipe' | 'socket' | 'memfd' | 'anon-inode' | 'path' | 'closed';

/**
 * The kind of an open descriptor of this process: 'eventfd' only for an eventfd; 'anon-inode' for
 * other anonymous inodes (timerfd, signalfd, epoll, ...); 'path' for anything opened by name
 * (regular file, directory, device, FIFO); 'closed' if `fd` is not open.
 */
export function fdKind(fd: number): FdKind {
  let link: string;
  try {
    link = readlinkSync(`/proc/self/fd/${fd}`);
  } catch (e) {
    if (!isErrnoException(e) || e.code !== 'ENOENT') throw e;
    if (!existsSync('/proc/self/fd')) throw new Error('fdKind: /proc is not mounted', { cause: e });
    return 'closed';
  }
  if (link === 'anon_inode:[eventfd]') return 'eventfd';
  if (link.startsWith('anon_inode:')) return 'anon-inode';
  if (link.startsWith('pipe:[')) return 'pipe';
  if (link.startsWith('socket:[')) return 'socket';
  if (link.startsWith('/memfd:')) return 'memfd';
  return 'path';
}

/** True only for an eventfd (see {@link fdKind}). */
export function isEventfd(fd: number): boolean {
  return fdKind(fd) === 'eventfd';
}

function isErrnoException(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string';
}

// ---- memfd / mmap --------------------------------------------------------------------------

/** File seals (fcntl F_ADD_SEALS / F_GET_SEALS), by name. */
export type FdSeal = 'seal' | 'shrink' | 'grow' | 'write' | 'future-write';

/**
 * memfd_create(name, MFD_CLOEXEC) + ftruncate(size). With `seals`, the memfd is created with
 * MFD_ALLOW_SEALING and gets those seals after the ftruncate (QEMU's memfd backend seals guest
 * memory against 'shrink' and 'grow'; `[]` allows sealing later).
 */
export function memfdCreate(name: string, size: number, seals?: readonly FdSeal[]): number {
  return binding.memfdCreate(name, size, seals);
}

/** fstat(2) st_size, e.g. to check that an mmap range fits the file. */
export function fdSize(fd: number): number {
  return binding.fdSize(fd);
}

/**
 * The seals of `fd` (fcntl F_GET_SEALS), or null for a file that cannot carry seals (a regular
 * file; a memfd created without MFD_ALLOW_SEALING reports ['seal']). A region whose memfd is
 * sealed against 'shrink' can never raise SIGBUS through truncation.
 */
export function fdSeals(fd: number): FdSeal[] | null {
  return binding.fdSeals(fd);
}

/**
 * mmap(MAP_SHARED, PROT_READ | PROT_WRITE-if-writable) returned as an external ArrayBuffer.
 * `length` must be > 0 and `offset` page-aligned ('EINVAL' otherwise); Node 20 limits
 * `length` to 4 GiB (RangeError beyond). Unmapped by {@link munmap} or, failing that, when
 * the ArrayBuffer is garbage-collected.
 *
 * Every mapping is guarded against SIGBUS: if the file shrinks under it (a front-end's
 * ftruncate of guest memory), touching a page past the new end does not kill the process.
 * The addon's SIGBUS handler maps zero pages from that page to the end of the mapping (reads
 * then give 0, writes are lost), marks the mapping ({@link mappingFaulted}) and counts the
 * fault ({@link mappingFaults}). Check after each batch of accesses and drop what the mapping
 * serves: its contents are no longer the file's. Faults anywhere else still kill the process
 * (native/memory.c has the trade-offs). Throws 'ENOSPC' beyond 65536 live mappings.
 */
export function mmap(fd: number, length: number, offset: number, writable = true): ArrayBuffer {
  return binding.mmap(fd, length, offset, writable);
}

/**
 * Detach `buf` (every view then has byteLength 0) and munmap it. Throws code 'EALREADY'
 * if it was already unmapped; TypeError if `buf` was not returned by {@link mmap}.
 */
export function munmap(buf: ArrayBuffer): void {
  binding.munmap(buf);
}

/**
 * True once a SIGBUS inside `buf` (returned by {@link mmap}) was survived. Throws 'EALREADY' once
 * unmapped. One native call: look at {@link mappingFaults} first, which costs none.
 */
export function mappingFaulted(buf: ArrayBuffer): boolean {
  return binding.mappingFaulted(buf);
}

/**
 * A live cell: `mappingFaults[0]` is the number of SIGBUS faults survived inside mappings of
 * this process (all threads), written by the signal handler. Compare `Atomics.load(mappingFaults,
 * 0)` with the value seen last to learn at no cost whether any mapping faulted since.
 */
export const mappingFaults: Int32Array = new Int32Array(binding.faultCounter());

// ---- CPU ---------------------------------------------------------------------------------

/** sched_getcpu(): the CPU the calling (main JS) thread is running on. */
export function getCpu(): number {
  return binding.getCpu();
}

/** sched_setaffinity(0, ...): pins the calling thread only (not libuv/V8 worker threads). CPUs < 1024. */
export function setAffinity(cpus: readonly number[]): void {
  binding.setAffinity(cpus);
}

/** sched_getaffinity(0): the calling thread's allowed CPUs, ascending. */
export function getAffinity(): number[] {
  return binding.getAffinity();
}

// ---- character devices ---------------------------------------------------------------------

/**
 * ioctl(fd, request, arg): the kernel reads and writes `arg` in place; returns the call's
 * (non-negative) result. For an _IOC-encoded request, `arg` must hold at least _IOC_SIZE(request)
 * bytes (RangeError otherwise). Used for the GPIO character device (src/hostchip).
 */
export function ioctl(fd: number, request: number, arg: ArrayBufferView): number {
  return binding.ioctl(fd, request, arg);
}

/** read(2) into `buffer`: the byte count (0 at end of file), or null on EAGAIN. */
export function readFd(fd: number, buffer: ArrayBufferView): number | null {
  return binding.readFd(fd, buffer);
}

// ---- timerfd (board time) ------------------------------------------------------------------

/**
 * timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), disarmed. Its readiness is watched
 * with an {@link FdPoller} (`drainEventfd: true` would read the expiration count; re-arming clears
 * it without a read); close it with {@link closeFd}.
 */
export function timerfdCreate(): number {
  return binding.timerfdCreate();
}

/**
 * Arm for one expiration at the absolute CLOCK_MONOTONIC time `deadlineNs` (the clock of
 * `process.hrtime.bigint()`), at once if it has passed; replaces any earlier arming and drops an
 * expiration not yet read (the fd is no longer readable). RangeError unless
 * 1n <= deadlineNs < 2n ** 63n; 'EINVAL' for a descriptor that is not a timerfd.
 */
export function timerfdArm(fd: number, deadlineNs: bigint): void {
  binding.timerfdArm(fd, deadlineNs);
}

/** No expiration until armed again; one not yet read is dropped too. */
export function timerfdDisarm(fd: number): void {
  binding.timerfdDisarm(fd);
}

/** The expirations since the last read (resetting them), or null when none; never blocks. */
export function timerfdRead(fd: number): bigint | null {
  return binding.timerfdRead(fd);
}

/** clock_gettime(CLOCK_MONOTONIC) in ns: the timerfd's clock. */
export function monotonicNs(): bigint {
  return binding.monotonicNs();
}

// ---- poller --------------------------------------------------------------------------------

/** See {@link FdPoller} (the interface) for semantics. */
export const FdPoller: FdPollerConstructor = binding.FdPoller;
