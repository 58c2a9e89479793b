// Shared helpers for the vhost-user, daemon, control and CLI tests: temp dirs, an in-process served
// GPIO device, a hand-written vhost-user client that sees every raw reply (and can send anything),
// a QEMU-like raw activation that leaves the test owning guest memory, rings and eventfds, and
// polling helpers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { GpioDevice } from '../../../src/device/gpio-device.ts';
import { Chip } from '../../../src/driver/chip.ts';
import type { GpioDriverOptions } from '../../../src/driver/gpio-driver.ts';
import { SimulatedLines } from '../../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../../src/device/virtio-gpio-device.ts';
import type { LogFields, LogLevel, Logger } from '../../../src/log/logger.ts';
import { IRQ_RESPONSE_SIZE, RESPONSE_SIZE } from '../../../src/protocol/constants.ts';
import { encodeIrqRequest, encodeRequest } from '../../../src/protocol/messages.ts';
import {
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  memfdCreate,
  mmap,
  munmap,
  recvMsg,
  sendMsg,
  socketConnect,
  socketPair,
} from '../../../src/native/index.ts';
import { VhostUserChannel, type Message } from '../../../src/transports/vhost-user/channel.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import {
  Flag,
  PROTOCOL_FEATURES_BIT,
  REPLY_FLAGS,
  Request,
  decodeU64,
  encodeMemoryTable,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  requestName,
  type MemoryRegionDesc,
} from '../../../src/transports/vhost-user/message.ts';
import { VhostUserServer } from '../../../src/transports/vhost-user/server.ts';
import { VirtioFeature, bit } from '../../../src/virtio/feature-bits.ts';
import type { ActiveRings, VirtioDriverTransport } from '../../../src/virtio/driver-transport.ts';
import type { DescriptorChain } from '../../../src/virtqueue/descriptor-chain.ts';
import { DriverQueue } from '../../../src/virtqueue/driver-queue.ts';
import { GuestAllocator } from '../../../src/virtqueue/guest-allocator.ts';
import { GuestMemory } from '../../../src/virtqueue/guest-memory.ts';
import { placeRings } from '../../../src/virtqueue/ring-placement.ts';
import type { RingLayout } from '../../../src/virtqueue/split-ring.ts';
import { RingPeer } from '../../virtqueue/harness.ts';

/** Everything the back-end offers: VERSION_1 | PROTOCOL_FEATURES(30) | EVENT_IDX | INDIRECT | GPIO_F_IRQ. */
export const WIRE_FEATURES = 0x1_7000_0001n;
/** The same without bit 30: what a driver sees and what the device negotiates. */
export const DEVICE_FEATURES = 0x1_3000_0001n;
/** MQ | REPLY_ACK | CONFIG | RESET_DEVICE. */
export const OFFERED_PROTOCOL = 0x2209n;
/** MQ | REPLY_ACK | CONFIG: what QEMU (and our front-end) acks. */
export const ACKED_PROTOCOL = 0x209n;

export const VERSION_1 = bit(VirtioFeature.VERSION_1);
export const PROTOCOL_BIT = PROTOCOL_FEATURES_BIT;
export const EVENT_IDX = bit(VirtioFeature.RING_EVENT_IDX);
export const INDIRECT = bit(VirtioFeature.RING_INDIRECT_DESC);
export const GPIO_F_IRQ = 1n;

// ---- temp dirs -----------------------------------------------------------------------------------

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(tmpdir() + '/vgpio-');
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---- logging -------------------------------------------------------------------------------------

export interface LogEntry {
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** Keeps every log line (with the child fields merged in) for assertions. */
export class RecordingLogger implements Logger {
  constructor(
    readonly entries: LogEntry[] = [],
    private readonly fields: LogFields = {},
  ) {}

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    this.entries.push({ level, msg, fields: { ...this.fields, ...fields } });
  }

  child(fields: LogFields): Logger {
    return new RecordingLogger(this.entries, { ...this.fields, ...fields });
  }

  /** Entries with this message logged since index `from`. */
  find(msg: string, from = 0): LogEntry[] {
    return this.entries.slice(from).filter((e) => e.msg === msg);
  }

  get mark(): number {
    return this.entries.length;
  }
}

// ---- polling -------------------------------------------------------------------------------------

/** Polls `cond` (every few ms) until it holds; fails with `what` after `ms`. */
export async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

// ---- an in-process served device -----------------------------------------------------------------

export interface ServedGpio {
  path: string;
  lines: SimulatedLines;
  gpio: GpioDevice<DescriptorChain>;
  virtio: VirtioGpioDevice;
  server: VhostUserServer;
  log: RecordingLogger;
  close(): void;
}

/** SimulatedLines → GpioDevice → VirtioGpioDevice served by a VhostUserServer on `path`. */
export function serveGpio(path: string, ngpio = 8, names: string[] = []): ServedGpio {
  const log = new RecordingLogger();
  const lines = new SimulatedLines(ngpio, names);
  const gpio = new GpioDevice<DescriptorChain>(lines);
  const virtio = new VirtioGpioDevice(gpio);
  const server = new VhostUserServer(virtio, { socketPath: path, log });
  return {
    path,
    lines,
    gpio,
    virtio,
    server,
    log,
    close: () => {
      server.close();
      lines.close();
    },
  };
}

// ---- a raw vhost-user client ---------------------------------------------------------------------

/**
 * A front-end that does nothing on its own: sends whatever the test says (also malformed), and
 * hands every message the back-end sends back to the test as it arrived (flags included).
 */
export class RawClient {
  readonly channel: VhostUserChannel;
  private readonly inbox: Message[] = [];
  private wake: (() => void) | null = null;
  closedReason: string | null = null;

  constructor(readonly fd: number) {
    this.channel = new VhostUserChannel(fd, {
      message: (m) => {
        this.inbox.push(m);
        this.wake?.();
      },
      closed: (reason) => {
        this.closedReason = reason;
        this.wake?.();
      },
    });
  }

  static connect(path: string): RawClient {
    return new RawClient(socketConnect(path));
  }

  send(request: number, payload?: Uint8Array, fds: number[] = [], flags: number = Flag.VERSION): void {
    this.channel.send(request, flags, payload, fds);
  }

  /** Bytes straight onto the socket (headers that encodeMessage would not write). */
  sendBytes(bytes: Uint8Array, fds: number[] = []): void {
    assert.equal(sendMsg(this.fd, bytes, fds), bytes.length);
  }

  /** The next message from the back-end, or null when it closed the connection. */
  async next(ms = 3000): Promise<Message | null> {
    const end = Date.now() + ms;
    while (this.inbox.length === 0 && this.closedReason === null) {
      const left = end - Date.now();
      if (left <= 0) assert.fail(`no message from the back-end within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.inbox.shift() ?? null;
  }

  /** Sends a request and returns its reply, checking the id and that flags are exactly 0x5. */
  async call(request: number, payload?: Uint8Array, fds: number[] = [], flags: number = Flag.VERSION) {
    this.send(request, payload, fds, flags);
    const m = await this.next();
    assert.ok(m, `back-end closed the connection instead of answering ${requestName(request)}`);
    assert.equal(m.request, request, `reply id for ${requestName(request)}`);
    assert.equal(m.flags, REPLY_FLAGS, `reply flags for ${requestName(request)}`);
    assert.equal(m.fds.length, 0);
    return m;
  }

  async u64(request: number): Promise<bigint> {
    const m = await this.call(request);
    assert.equal(m.size, 8);
    return decodeU64(m.payload);
  }

  /** Sends with NEED_REPLY and returns the REPLY_ACK status. */
  async ack(request: number, payload?: Uint8Array, fds: number[] = []): Promise<bigint> {
    const m = await this.call(request, payload, fds, Flag.VERSION | Flag.NEED_REPLY);
    assert.equal(m.size, 8, `${requestName(request)} ack size`);
    return decodeU64(m.payload);
  }

  /** Asserts the back-end closes the connection without sending anything first. */
  async expectClosed(ms = 3000): Promise<void> {
    const m = await this.next(ms);
    assert.equal(m, null, m ? `expected a disconnect, got ${requestName(m.request)}` : '');
    // A peer that closes with our message unread resets the connection: POLLERR/ECONNRESET.
    assert.match(this.closedReason ?? '', /^peer (closed|reset) the connection$/);
  }

  /** Asserts nothing arrives (and the connection stays up) for `ms`. */
  async expectSilence(ms = 60): Promise<void> {
    await sleep(ms);
    assert.equal(this.inbox.length, 0, `unexpected ${this.inbox.map((m) => requestName(m.request))}`);
    assert.equal(this.closedReason, null, 'the connection closed');
  }

  /** GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES(protocol), SET_OWNER. */
  async handshake(protocol = ACKED_PROTOCOL): Promise<void> {
    assert.equal(await this.u64(Request.GET_FEATURES), WIRE_FEATURES);
    assert.equal(await this.u64(Request.GET_PROTOCOL_FEATURES), OFFERED_PROTOCOL);
    this.send(Request.SET_PROTOCOL_FEATURES, encodeU64(protocol));
    if (protocol & 8n) assert.equal(await this.ack(Request.SET_OWNER), 0n);
    else this.send(Request.SET_OWNER);
  }

  close(): void {
    this.channel.close();
  }
}

/**
 * One end of a socket pair to attach to a message, and a probe telling whether every copy of it
 * was closed (the receiver's included): the other end then reads EOF.
 */
export function trackedFd(): { fd: number; closedEverywhere: () => boolean; dispose: () => void } {
  const [mine, theirs] = socketPair();
  let sentCopyOpen = true;
  let mineOpen = true;
  const closeSentCopy = () => {
    if (sentCopyOpen) closeFd(theirs);
    sentCopyOpen = false;
  };
  return {
    fd: theirs,
    /** Call after the message went out: closes our copy of the sent end, then probes. */
    closedEverywhere: () => {
      closeSentCopy();
      const r = recvMsg(mine, 1);
      return r !== null && r.data.length === 0;
    },
    dispose: () => {
      closeSentCopy();
      if (mineOpen) closeFd(mine);
      mineOpen = false;
    },
  };
}

// ---- a QEMU-like activation owned by the test ------------------------------------------------------

export const GUEST_BASE = 0x1000_0000;
export const USER_BASE = 0x7f00_0000_0000n;

export interface RawSession {
  memfd: number;
  memory: GuestMemory;
  allocator: GuestAllocator;
  layouts: RingLayout[];
  /** The region as sent in SET_MEM_TABLE. */
  table: MemoryRegionDesc[];
  kick: number[];
  call: number[];
  /** Front-end user address of a guest-physical address. */
  user(gpa: number): bigint;
  dispose(): void;
}

export interface ActivateOptions {
  features?: bigint;
  queueSize?: number;
  memBytes?: number;
  /** Send SET_VRING_ENABLE 1 per ring (default: when bit 30 is in features). */
  enable?: boolean;
}

/**
 * SET_FEATURES, SET_MEM_TABLE, per ring NUM/BASE/ADDR/KICK/CALL, SET_VRING_ENABLE — every message
 * with NEED_REPLY and an ack of 0 expected. The test owns memory, rings and eventfds (not polled,
 * so the call eventfd counts the back-end's notifications).
 */
export async function rawActivate(c: RawClient, opts: ActivateOptions = {}): Promise<RawSession> {
  const features = opts.features ?? WIRE_FEATURES;
  const size = opts.queueSize ?? 16;
  const bytes = opts.memBytes ?? 1 << 20;
  assert.equal(await c.ack(Request.SET_FEATURES, encodeU64(features)), 0n, 'SET_FEATURES');
  const memfd = memfdCreate('vgpio-test-guest', bytes);
  const mapping = mmap(memfd, bytes, 0, true);
  const memory = new GuestMemory([{ guestPhysAddr: GUEST_BASE, bytes: new Uint8Array(mapping) }]);
  const table = [
    {
      guestPhysAddr: BigInt(GUEST_BASE),
      memorySize: BigInt(bytes),
      userspaceAddr: USER_BASE,
      mmapOffset: 0n,
    },
  ];
  assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable(table), [memfd]), 0n, 'SET_MEM_TABLE');
  const user = (gpa: number) => USER_BASE + BigInt(gpa - GUEST_BASE);
  const { layouts, end: at } = placeRings([size, size], GUEST_BASE);
  const kick: number[] = [];
  const call: number[] = [];
  for (const [index, l] of layouts.entries()) {
    kick.push(eventfd(0));
    call.push(eventfd(0));
    assert.equal(await c.ack(Request.SET_VRING_NUM, encodeVringState({ index, num: size })), 0n);
    assert.equal(await c.ack(Request.SET_VRING_BASE, encodeVringState({ index, num: 0 })), 0n);
    const addr = {
      index,
      flags: 0,
      desc: user(l.descAddr),
      used: user(l.usedAddr),
      avail: user(l.availAddr),
    };
    assert.equal(await c.ack(Request.SET_VRING_ADDR, encodeVringAddr({ ...addr, log: 0n })), 0n);
    assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(BigInt(index)), [kick[index]]), 0n);
    assert.equal(await c.ack(Request.SET_VRING_CALL, encodeU64(BigInt(index)), [call[index]]), 0n);
  }
  if (opts.enable ?? (features & PROTOCOL_BIT) !== 0n)
    for (const index of [0, 1])
      assert.equal(await c.ack(Request.SET_VRING_ENABLE, encodeVringState({ index, num: 1 })), 0n);
  let disposed = false;
  return {
    memfd,
    memory,
    allocator: new GuestAllocator(at, GUEST_BASE + bytes - at),
    layouts,
    table,
    kick,
    call,
    user,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const fd of [...kick, ...call, memfd]) closeFd(fd);
      munmap(mapping);
    },
  };
}

/** Reads (and resets) an eventfd counter: how many times the back-end signalled since the last read. */
export const signals = (fd: number): number => Number(eventfdRead(fd) ?? 0n);

/** Field access to a split ring in guest memory (driver's view). */
export class Ring extends RingPeer {
  setAvailEntry(slot: number, head: number): void {
    this.avail.setUint16(4 + 2 * slot, head, true);
  }
  writeDesc(i: number, addr: number, len: number, flags: number, next = 0): void {
    this.desc(i, { addr, len, flags, next });
  }
}

// ---- the real front-end, with the rings it placed ---------------------------------------------------

/** Wraps a VhostUserFrontend and keeps the ActiveRings it returned (to write guest memory directly). */
export class CapturingTransport implements VirtioDriverTransport {
  rings: ActiveRings | null = null;
  constructor(readonly fe: VhostUserFrontend) {}
  get deviceId(): number {
    return this.fe.deviceId;
  }
  deviceFeatures(): Promise<bigint> {
    return this.fe.deviceFeatures();
  }
  readConfig(offset: number, size: number): Promise<Uint8Array> {
    return this.fe.readConfig(offset, size);
  }
  async activate(features: bigint, queueSizes: readonly number[]): Promise<ActiveRings> {
    this.rings = await this.fe.activate(features, queueSizes);
    return this.rings;
  }
  kick(i: number): void {
    this.fe.kick(i);
  }
  onInterrupt(i: number, h: () => void): void {
    this.fe.onInterrupt(i, h);
  }
  close(): Promise<void> {
    return this.fe.close();
  }
}

/** The front-end's socket channel (private): closing it is the front-end vanishing without a word. */
export function frontendChannel(fe: VhostUserFrontend): VhostUserChannel {
  const ch = (fe as unknown as { channel?: unknown }).channel;
  assert.ok(ch instanceof VhostUserChannel, 'VhostUserFrontend keeps its channel in `channel`');
  return ch;
}

// ---- a minimal driver on a RawSession ------------------------------------------------------------

export interface Reply {
  status: number;
  value: number;
  len: number;
}

/**
 * Driver-side queues on a RawSession's rings, for tests that need to count kicks and notifications
 * or stop and restart rings under a driver's feet.
 */
export class MiniDriver {
  rq: DriverQueue<number>;
  eq: DriverQueue<number>;
  readonly rqRing: Ring;
  readonly eqRing: Ring;
  private tokens = 0;

  constructor(
    readonly s: RawSession,
    readonly eventIdx = true,
  ) {
    const opts = { eventIdx, indirect: false };
    this.rq = new DriverQueue<number>(s.memory, s.layouts[0], s.allocator, opts);
    this.eq = new DriverQueue<number>(s.memory, s.layouts[1], s.allocator, opts);
    this.rqRing = new Ring(s.memory, s.layouts[0]);
    this.eqRing = new Ring(s.memory, s.layouts[1]);
  }

  /** Fresh (zeroed) driver queues on the same rings: what a re-initialised guest driver does. */
  reinit(): void {
    const opts = { eventIdx: this.eventIdx, indirect: false };
    this.rq = new DriverQueue<number>(this.s.memory, this.s.layouts[0], this.s.allocator, opts);
    this.eq = new DriverQueue<number>(this.s.memory, this.s.layouts[1], this.s.allocator, opts);
  }

  /** Publishes a request without kicking. */
  place(type: number, gpio: number, value = 0): number {
    const token = ++this.tokens;
    this.rq.add({ readable: [encodeRequest({ type, gpio, value })], writable: [RESPONSE_SIZE] }, token);
    return token;
  }

  kick(queue: number): void {
    eventfdWrite(this.s.kick[queue], 1n);
  }

  /** Waits until the device has used `n` more requestq entries than `from`, then collects them. */
  async collectRequests(from: number, n: number): Promise<Reply[]> {
    await waitFor(() => this.rqRing.usedIdx === ((from + n) & 0xffff), `requestq used idx ${from + n}`);
    return this.rq.collect().map((u) => ({ status: u.data[0], value: u.data[1], len: u.len }));
  }

  /** One request, kicked and waited for. */
  async request(type: number, gpio: number, value = 0): Promise<Reply> {
    const from = this.rqRing.usedIdx;
    this.place(type, gpio, value);
    this.kick(0);
    const [r] = await this.collectRequests(from, 1);
    return r;
  }

  /** Queues the line's eventq buffer and kicks. */
  arm(line: number): void {
    this.eq.add({ readable: [encodeIrqRequest(line)], writable: [IRQ_RESPONSE_SIZE] }, line);
    this.kick(1);
  }

  /** Waits for eventq used idx to reach `idx`, then returns [line, status, len] per used buffer. */
  async collectEvents(idx: number): Promise<Array<[line: number, status: number, len: number]>> {
    await waitFor(() => this.eqRing.usedIdx === idx, `eventq used idx ${idx}`);
    return this.eq.collect().map((u) => [u.token, u.data[0], u.len]);
  }
}

// ---- chips with bounded waits --------------------------------------------------------------------

/** Driver options for tests: a request the device never answers fails instead of hanging. */
export const CHIP_OPTS = { requestTimeoutMs: 5000 } as const;

/** A Chip over VhostUserFrontend on `path` (replies and requests time out after 5 s). */
export async function openChip(path: string, opts: GpioDriverOptions = {}): Promise<Chip> {
  return Chip.open(await VhostUserFrontend.connect(path, 41, { timeoutMs: 5000 }), { ...CHIP_OPTS, ...opts });
}

/** Waits for `p` (ignoring its failure) at most `ms`: for cleanup that must not hang a test file. */
export async function settle(p: Promise<unknown> | undefined, ms = 5000): Promise<void> {
  if (!p) return;
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise((r) => (t = setTimeout(r, ms)))]);
  clearTimeout(t);
}
