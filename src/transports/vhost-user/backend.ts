import type { Logger } from '../../log/logger.ts';
import { closeQuietly, eventfdWrite, fdKind } from '../../native/index.ts';
import { bit } from '../../virtio/feature-bits.ts';
import type { VirtioDevice } from '../../virtio/virtio-device.ts';
import { DeviceQueue } from '../../virtqueue/device-queue.ts';
import {
  availRingBytes,
  descTableBytes,
  isValidQueueSize,
  ringOptions,
  usedRingBytes,
} from '../../virtqueue/split-ring.ts';
import { VhostUserChannel, type Message } from './channel.ts';
import { isSemaphoreEventfd } from './eventfd-watch.ts';
import { newCounters, type VhostUserCounters } from './counters.ts';
import { MappedMemory } from './mapped-memory.ts';
import {
  CONFIG_HEADER_SIZE,
  Flag,
  MAX_FDS,
  MEMORY_TABLE_HEADER_SIZE,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  REGION_SIZE,
  REPLY_FLAGS,
  Request,
  VRING_ADDR_SIZE,
  VRING_INDEX_MASK,
  VRING_NOFD,
  decodeConfigPayload,
  decodeMemoryTable,
  decodeU64,
  decodeVringAddr,
  decodeVringState,
  encodeConfigPayload,
  encodeU64,
  encodeVringState,
  requestName,
  type MemoryRegionDesc,
} from './message.ts';
import { Vring } from './vring.ts';

const MAX_CONFIG = 256;
/** Chains served per ring in one turn of the event loop, at most (see overWeight). */
const RING_WEIGHT = 256;

export const BACKEND_PROTOCOL_FEATURES =
  bit(ProtocolFeature.MQ) |
  bit(ProtocolFeature.REPLY_ACK) |
  bit(ProtocolFeature.CONFIG) |
  bit(ProtocolFeature.RESET_DEVICE);

/** A message we refuse: answered with a failed REPLY_ACK where possible, else logged (or the peer dropped). */
class Refusal extends Error {}

/** How one request is checked and served (docs/protocol.md §6). */
interface RequestRule {
  /** The exact payload size, or null when the handler checks it (variable-size payloads). */
  payload: number | null;
  /** 'none': any fd attached is refused; 'checked': the handler checks the count (rings, regions). */
  fds: 'none' | 'checked';
  /** 'data': the reply carries data, so a refusal cannot be expressed and ends the connection. */
  reply: 'data' | 'ack';
  /** Applies the message; returns the reply payload for 'data' requests. */
  handle(b: VhostUserBackend, m: Message): Uint8Array | null;
}

/** Which fd of a ring a SET_VRING_KICK / CALL / ERR sets. */
type RingFd = 'kick' | 'call' | 'err';

/**
 * The back-end side of one vhost-user connection: the protocol state machine that turns
 * messages into ring and memory state for a VirtioDevice. Knows nothing of what the device is.
 */
export interface VhostUserBackendOptions {
  /** Busy-poll each ring for this long after its last chain, kicks suppressed (default 0: off). */
  pollUs?: number;
}

export class VhostUserBackend {
  private readonly channel: VhostUserChannel;
  private readonly rings: Vring[];
  private memory: MappedMemory | null = null;
  private memoryTable: MemoryRegionDesc[] = [];
  private features = 0n;
  private featuresSet = false;
  private protocolFeatures = 0n;
  /** Rings have run since the last driver reset: a restart from avail index 0 is a new driver. */
  private ringsRan = false;
  /** Set when the connection must end; nothing more is served from then on. */
  private failed: string | null = null;
  private onClose: ((reason: string) => void) | null = null;
  /** Busy polling after a kick, in ms (0: off). */
  private readonly pollMs: number;

  constructor(
    fd: number,
    private readonly device: VirtioDevice,
    private readonly log: Logger,
    private readonly counters: VhostUserCounters = newCounters(),
    options: VhostUserBackendOptions = {},
  ) {
    this.pollMs = (options.pollUs ?? 0) / 1000;
    counters.connections++;
    this.rings = Array.from({ length: device.numQueues }, (_, i) => new Vring(i));
    device.onNeedsReset = (q, e) => {
      // A ring read as zeros because its memory shrank is the front-end's doing, not a malformed ring.
      this.checkMemory();
      if (!this.failed)
        this.log.log('error', 'queue is malformed; the device needs a reset', { queue: q, error: e.message });
    };
    this.channel = new VhostUserChannel(fd, {
      message: (m) => this.handle(m),
      closed: (reason) => this.teardown(reason),
    });
  }

  /** Called once when the connection ends, for whatever reason. */
  onClosed(cb: (reason: string) => void): void {
    this.onClose = cb;
  }

  close(reason = 'closed by the back-end'): void {
    this.channel.close(reason);
  }

  get negotiatedFeatures(): bigint {
    return this.features;
  }

  private get replyAck(): boolean {
    return (this.protocolFeatures & bit(ProtocolFeature.REPLY_ACK)) !== 0n;
  }

  private handle(m: Message): void {
    this.counters.messages++;
    const name = requestName(m.request);
    this.log.log('debug', 'message', { request: name, flags: m.flags, size: m.size, fds: m.fds.length });
    if (
      (m.flags & Flag.VERSION_MASK) !== Flag.VERSION ||
      (m.flags & ~(Flag.VERSION_MASK | Flag.NEED_REPLY)) !== 0
    ) {
      m.fds.forEach(closeQuietly);
      this.counters.dropped++;
      this.log.log('warn', 'bad message flags or version: disconnecting', { request: name, flags: m.flags });
      return this.channel.close(`bad flags 0x${m.flags.toString(16)}`);
    }
    const rule = VhostUserBackend.requests.get(m.request);
    try {
      if (!rule) throw new Refusal(`unsupported request ${name}`);
      if (rule.fds === 'none' && m.fds.length > 0)
        throw new Refusal(`${m.fds.length} fds attached, expected 0`);
      if (rule.payload !== null && m.payload.length !== rule.payload)
        throw new Refusal(`payload is ${m.payload.length} bytes, expected ${rule.payload}`);
      const reply = rule.handle(this, m);
      if (reply) this.channel.send(m.request, REPLY_FLAGS, reply);
      else if (m.flags & Flag.NEED_REPLY && this.replyAck)
        this.channel.send(m.request, REPLY_FLAGS, encodeU64(0n));
    } catch (e) {
      m.fds.forEach(closeQuietly);
      if (!(e instanceof Refusal)) return this.internalError(`handling ${name}`, e);
      this.counters.refused++;
      this.log.log('warn', 'request refused', { request: name, reason: e.message });
      if (rule?.reply === 'data') {
        this.counters.dropped++;
        return this.channel.close(`cannot answer ${name}: ${e.message}`);
      }
      if (m.flags & Flag.NEED_REPLY && this.replyAck)
        this.channel.send(m.request, REPLY_FLAGS, encodeU64(1n));
    }
  }

  /** One row per request we serve; anything else is refused (docs/protocol.md §6). */
  private static readonly requests = new Map<number, RequestRule>([
    [
      Request.GET_FEATURES,
      {
        payload: 0,
        fds: 'none',
        reply: 'data',
        handle: (b) => encodeU64(b.device.offeredFeatures | PROTOCOL_FEATURES_BIT),
      },
    ],
    [Request.SET_FEATURES, { payload: 8, fds: 'none', reply: 'ack', handle: (b, m) => b.setFeatures(m) }],
    [
      Request.GET_PROTOCOL_FEATURES,
      { payload: 0, fds: 'none', reply: 'data', handle: () => encodeU64(BACKEND_PROTOCOL_FEATURES) },
    ],
    [
      Request.SET_PROTOCOL_FEATURES,
      { payload: 8, fds: 'none', reply: 'ack', handle: (b, m) => b.setProtocolFeatures(m) },
    ],
    [
      Request.GET_QUEUE_NUM,
      { payload: 0, fds: 'none', reply: 'data', handle: (b) => encodeU64(BigInt(b.rings.length)) },
    ],
    [Request.SET_OWNER, { payload: 0, fds: 'none', reply: 'ack', handle: () => null }],
    [Request.RESET_OWNER, { payload: 0, fds: 'none', reply: 'ack', handle: (b) => b.resetDevice() }],
    [Request.RESET_DEVICE, { payload: 0, fds: 'none', reply: 'ack', handle: (b) => b.resetDevice() }],
    [
      Request.SET_MEM_TABLE,
      { payload: null, fds: 'checked', reply: 'ack', handle: (b, m) => b.setMemTable(m) },
    ],
    [Request.SET_VRING_NUM, { payload: 8, fds: 'none', reply: 'ack', handle: (b, m) => b.setVringNum(m) }],
    [
      Request.SET_VRING_ADDR,
      { payload: VRING_ADDR_SIZE, fds: 'none', reply: 'ack', handle: (b, m) => b.setVringAddr(m) },
    ],
    [Request.SET_VRING_BASE, { payload: 8, fds: 'none', reply: 'ack', handle: (b, m) => b.setVringBase(m) }],
    [Request.GET_VRING_BASE, { payload: 8, fds: 'none', reply: 'data', handle: (b, m) => b.getVringBase(m) }],
    [
      Request.SET_VRING_KICK,
      { payload: 8, fds: 'checked', reply: 'ack', handle: (b, m) => b.setVringFd(m, 'kick') },
    ],
    [
      Request.SET_VRING_CALL,
      { payload: 8, fds: 'checked', reply: 'ack', handle: (b, m) => b.setVringFd(m, 'call') },
    ],
    [
      Request.SET_VRING_ERR,
      { payload: 8, fds: 'checked', reply: 'ack', handle: (b, m) => b.setVringFd(m, 'err') },
    ],
    [
      Request.SET_VRING_ENABLE,
      { payload: 8, fds: 'none', reply: 'ack', handle: (b, m) => b.setVringEnable(m) },
    ],
    [Request.GET_CONFIG, { payload: null, fds: 'none', reply: 'data', handle: (b, m) => b.getConfig(m) }],
    [
      Request.SET_CONFIG,
      {
        payload: null,
        fds: 'none',
        reply: 'ack',
        handle: () => {
          throw new Refusal('the config space is read-only');
        },
      },
    ],
  ]);

  private ring(index: number): Vring {
    const r = this.rings[index];
    if (!r) throw new Refusal(`ring index ${index} out of range (device has ${this.rings.length})`);
    return r;
  }

  /** A ring whose size, address or base may still change. */
  private stoppedRing(index: number): Vring {
    const r = this.ring(index);
    if (r.live) throw new Refusal('ring is running');
    return r;
  }

  private setFeatures(m: Message): null {
    const f = decodeU64(m.payload);
    const unknown = f & ~(this.device.offeredFeatures | PROTOCOL_FEATURES_BIT);
    if (unknown) throw new Refusal(`features 0x${unknown.toString(16)} were not offered`);
    this.features = f;
    this.featuresSet = true;
    this.device.setFeatures(f & ~PROTOCOL_FEATURES_BIT);
    if (!(f & PROTOCOL_FEATURES_BIT)) for (const r of this.rings) this.setEnabled(r, true);
    this.log.log('info', 'features negotiated', { features: `0x${f.toString(16)}` });
    return null;
  }

  private setProtocolFeatures(m: Message): null {
    const f = decodeU64(m.payload);
    const unknown = f & ~BACKEND_PROTOCOL_FEATURES;
    if (unknown) throw new Refusal(`protocol features 0x${unknown.toString(16)} were not offered`);
    this.protocolFeatures = f;
    return null;
  }

  private setVringNum(m: Message): null {
    const s = decodeVringState(m.payload);
    const r = this.ring(s.index);
    if (!isValidQueueSize(s.num) || s.num > this.device.maxQueueSize)
      throw new Refusal(`queue size ${s.num} (max ${this.device.maxQueueSize}, power of two)`);
    if (r.live) throw new Refusal('ring is running');
    r.num = s.num;
    return null;
  }

  private setVringAddr(m: Message): null {
    const a = decodeVringAddr(m.payload);
    this.stoppedRing(a.index).addr = a;
    return null;
  }

  private setVringBase(m: Message): null {
    const s = decodeVringState(m.payload);
    const r = this.stoppedRing(s.index);
    if (s.num > 0xffff) throw new Refusal(`base ${s.num} does not fit a split ring`);
    r.base = s.num;
    return null;
  }

  private getVringBase(m: Message): Uint8Array {
    const r = this.ring(decodeVringState(m.payload).index);
    this.stop(r);
    r.started = false;
    return encodeVringState({ index: r.index, num: r.base });
  }

  /** SET_VRING_KICK / CALL / ERR: bits 0–7 the ring, bit 8 "no fd" (docs/protocol.md §6). */
  private setVringFd(m: Message, which: RingFd): null {
    const v = Number(decodeU64(m.payload) & 0xffffn);
    const r = this.ring(v & VRING_INDEX_MASK);
    if (v & ~(VRING_INDEX_MASK | VRING_NOFD)) throw new Refusal(`reserved bits set in 0x${v.toString(16)}`);
    const expected = v & VRING_NOFD ? 0 : 1;
    if (m.fds.length !== expected) throw new Refusal(`${m.fds.length} fds attached, expected ${expected}`);
    const fd = m.fds[0] ?? null;
    // Only an eventfd: a pipe or socket can be made to block a write, and a regular file cannot be
    // polled (docs/protocol.md §7). Its reads and writes then never wait, whatever the front-end
    // does to the open file it shares with us.
    if (fd !== null) {
      let kind: string;
      try {
        kind = fdKind(fd);
      } catch (e) {
        kind = `unknown kind (${(e as Error).message})`;
      }
      if (kind !== 'eventfd') throw new Refusal(`${which} fd is a ${kind}, not an eventfd`);
      if (which === 'kick' && isSemaphoreEventfd(fd))
        throw new Refusal('kick fd is a semaphore-mode eventfd (one kick per read, never empty)');
    }
    if (which === 'call') r.replace('callFd', fd);
    else if (which === 'err') r.replace('errFd', fd);
    else {
      try {
        r.setKick(
          fd,
          () => this.kicked(r),
          (error) =>
            this.log.log('warn', 'kick fd cannot be read: no longer polled', { ring: r.index, error }),
        );
      } catch (e) {
        throw new Refusal(`kick fd cannot be polled: ${(e as Error).message}`);
      }
      r.started = true;
      this.refresh(r);
    }
    return null;
  }

  private setVringEnable(m: Message): null {
    if (!(this.features & PROTOCOL_FEATURES_BIT)) throw new Refusal('protocol features were not negotiated');
    const s = decodeVringState(m.payload);
    const r = this.ring(s.index);
    if (s.num > 1) throw new Refusal(`enable value ${s.num}`);
    this.setEnabled(r, s.num === 1);
    return null;
  }

  private getConfig(m: Message): Uint8Array {
    const c = decodeConfigPayload(m.payload);
    if (!c || m.payload.length !== CONFIG_HEADER_SIZE + c.size) throw new Refusal('malformed config payload');
    if (c.size > MAX_CONFIG) throw new Refusal(`config size ${c.size} > ${MAX_CONFIG}`);
    // Bytes past the device's config space read as zero; the reply keeps the asked size.
    const data = new Uint8Array(c.size);
    for (let i = 0; i < c.size; i++) data[i] = this.device.readConfig(c.offset + i, 1)?.[0] ?? 0;
    return encodeConfigPayload({ offset: c.offset, size: c.size, flags: 0, data });
  }

  private setMemTable(m: Message): null {
    const table = decodeMemoryTable(m.payload);
    if (!table || m.payload.length !== MEMORY_TABLE_HEADER_SIZE + REGION_SIZE * table.length)
      throw new Refusal('malformed memory table');
    if (table.length === 0 || table.length > MAX_FDS)
      throw new Refusal(`${table.length} regions (1..${MAX_FDS})`);
    if (m.fds.length !== table.length) throw new Refusal(`${table.length} regions but ${m.fds.length} fds`);
    if (this.memory && sameTable(table, this.memoryTable)) {
      // The same guest RAM again (QEMU re-sends it at every start): keep the mapping and what is held in it.
      m.fds.forEach(closeQuietly);
      return null;
    }
    let mapped: MappedMemory;
    try {
      mapped = MappedMemory.map(table, m.fds);
    } catch (e) {
      throw new Refusal((e as Error).message);
    } finally {
      m.fds.forEach(closeQuietly);
    }
    const running = this.rings.filter((r) => r.live);
    for (const r of this.rings) this.stop(r, true);
    this.memory?.unmap();
    this.memory = mapped;
    this.memoryTable = table;
    this.log.log('info', 'memory table mapped', {
      regions: table.length,
      bytes: table.reduce((n, r) => n + Number(r.memorySize), 0),
    });
    for (const r of running) this.refresh(r);
    return null;
  }

  private setEnabled(r: Vring, on: boolean): void {
    r.enabled = on;
    if (on) this.refresh(r);
    else this.stop(r);
  }

  /** Hands the ring to the device when it is started, enabled and placeable in memory. */
  private refresh(r: Vring): void {
    if (r.live || !r.started || !r.enabled || this.failed) return;
    if (!this.featuresSet || !this.memory || !r.addr || r.num === 0) return;
    const mem = this.memory;
    const place = (ua: bigint, len: number, what: string): number => {
      const gpa = mem.userToGuest(ua, len);
      if (gpa === null)
        throw new Error(`${what} at user address 0x${ua.toString(16)} is outside the memory table`);
      return gpa;
    };
    let queue: DeviceQueue;
    try {
      const layout = {
        size: r.num,
        descAddr: place(r.addr.desc, descTableBytes(r.num), 'descriptor table'),
        availAddr: place(r.addr.avail, availRingBytes(r.num), 'avail ring'),
        usedAddr: place(r.addr.used, usedRingBytes(r.num), 'used ring'),
      };
      queue = new DeviceQueue(mem.guest, layout, {
        ...ringOptions(this.features),
        nextAvail: r.base,
      });
    } catch (e) {
      this.log.log('error', 'ring cannot start', { ring: r.index, error: (e as Error).message });
      return;
    }
    if (r.base === 0 && this.ringsRan && !this.rings.some((x) => x.live)) {
      // Every ring restarts from index 0: the guest re-initialised the device.
      this.log.log('info', 'rings restarted from index 0: new driver, interrupts reset');
      this.device.reset();
    }
    this.ringsRan = true;
    r.live = queue;
    this.device.startQueue(r.index, queue, () => this.notify(r));
  }

  /** Takes the ring from the device; remembers where it stopped. */
  private stop(r: Vring, drop = false): void {
    if (r.live) {
      r.base = r.live.lastAvailIndex;
      r.live = null;
      this.device.stopQueue(r.index, drop);
    } else if (drop) {
      this.device.stopQueue(r.index, true);
    }
  }

  private kicked(r: Vring): void {
    if (this.failed) return;
    try {
      const q = r.live;
      if (q && this.pollMs > 0) this.busyPoll(r, q);
      else if (q) this.serveWithKicksOff(r, q);
    } catch (e) {
      this.internalError(`serving ring ${r.index}`, e);
    }
    this.checkMemory();
  }

  /**
   * Serves the ring with the driver's kicks suppressed, as Linux vhost does while it works: a
   * driver adding chains meanwhile sends no kick (which would cost it a syscall and us a wake-up
   * that finds the ring already served). Kicks are allowed again and the ring checked once more
   * before we sleep, so a chain added while kicks were off is served, not lost.
   */
  private serveWithKicksOff(r: Vring, q: DeviceQueue): void {
    const first = q.lastAvailIndex;
    q.suppressKicks();
    this.device.kick(r.index);
    for (;;) {
      // Whatever ends the work, kicks are on again when we return.
      if (!this.servingStill(r, q)) return void q.allowKicks();
      if (!q.allowKicks()) return;
      // Chains came while kicks were off: the driver sent no kick for them.
      if (this.overWeight(r, q, first)) return;
      q.suppressKicks();
      if (!this.kickTook(r, q)) return void q.allowKicks();
    }
  }

  /**
   * A driver that keeps adding chains while we serve (each one seen before kicks come back on)
   * would keep this thread in one callback for good, and every other connection, timer and the
   * control socket with it. Past RING_WEIGHT chains in one turn (Linux vhost's weight), the rest
   * are served on the next turn of the event loop: no kick will announce them, so we come back.
   */
  private overWeight(r: Vring, q: DeviceQueue, first: number): boolean {
    if (((q.lastAvailIndex - first) & 0xffff) < RING_WEIGHT) return false;
    if (!r.resumeScheduled) {
      r.resumeScheduled = true;
      setImmediate(() => {
        r.resumeScheduled = false;
        if (r.live === q) this.kicked(r);
      });
    }
    return true;
  }

  /** The ring is still ours to serve (nothing stopped or broke it during the device's work). */
  private servingStill(r: Vring, q: DeviceQueue): boolean {
    return r.live === q && !this.failed && q.broken === null;
  }

  /**
   * Kicks the device; false when it took no chain although the ring had some (a device that has
   * stopped taking them): looping on it would block the thread for good.
   */
  private kickTook(r: Vring, q: DeviceQueue): boolean {
    const before = q.lastAvailIndex;
    this.device.kick(r.index);
    return q.lastAvailIndex !== before;
  }

  /**
   * Linux vhost-net's busyloop_timeout: with the driver's kicks suppressed, keep looking at the
   * avail ring for up to pollMs after the last chain found; then ask for kicks again and look once
   * more, so a chain the driver added while it saw kicks suppressed is served, not lost. Blocks this
   * thread meanwhile: it pays when the back-end has a CPU of its own (docs/performance.md).
   */
  private busyPoll(r: Vring, q: DeviceQueue): void {
    const first = q.lastAvailIndex;
    q.suppressKicks();
    let deadline = performance.now() + this.pollMs;
    for (;;) {
      while (this.servingStill(r, q) && performance.now() < deadline)
        if (this.kickTook(r, q)) {
          if (((q.lastAvailIndex - first) & 0xffff) >= RING_WEIGHT) break;
          deadline = performance.now() + this.pollMs;
        }
      if (!this.servingStill(r, q)) return void q.allowKicks();
      if (!q.allowKicks() || this.overWeight(r, q, first)) return;
      // Chains that came while kicks were off: served, then poll again.
      q.suppressKicks();
      if (!this.kickTook(r, q)) return void q.allowKicks();
      deadline = performance.now() + this.pollMs;
    }
  }

  /** After the device touched guest memory: did the front-end shrink it under us (docs/protocol.md §7)? */
  private checkMemory(): void {
    if (this.memory?.faulted()) this.fail('guest memory shrank under a mapped region (SIGBUS survived)');
  }

  /** A bug, not bad input: end this connection, keep the process and its other devices alive. */
  private internalError(what: string, e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.log.log('error', `internal error ${what}: disconnecting`, { error: err.message, stack: err.stack });
    this.channel.close(`internal error ${what}: ${err.message}`);
  }

  /**
   * The front-end made this device unusable (a call fd that cannot take a signal, guest memory that
   * went away): stop serving at once, and end the connection once the current callback has returned
   * (the device model may be in the middle of a ring).
   */
  private fail(reason: string, fields: Record<string, string | number> = {}): void {
    if (this.failed) return;
    this.failed = reason;
    this.counters.dropped++;
    this.log.log('warn', 'device broken by the front-end: disconnecting', { reason, ...fields });
    for (const r of this.rings) this.stop(r);
    queueMicrotask(() => this.channel.close(reason));
  }

  private notify(r: Vring): void {
    this.checkMemory();
    if (r.callFd === null || this.failed) return;
    let delivered: boolean;
    let error = 'counter saturated';
    try {
      delivered = eventfdWrite(r.callFd, 1n);
    } catch (e) {
      delivered = false;
      error = (e as Error).message;
    }
    if (!delivered) this.fail(`call fd of ring ${r.index} cannot take a notification: ${error}`);
  }

  /** Stops every ring and closes its fds, then forgets the driver's state: RESET_DEVICE and teardown. */
  private releaseRings(): void {
    for (const r of this.rings) {
      this.stop(r, true);
      r.dispose();
    }
    this.device.reset();
  }

  private resetDevice(): null {
    this.releaseRings();
    this.ringsRan = false;
    return null;
  }

  private teardown(reason: string): void {
    this.releaseRings();
    this.memory?.unmap();
    this.memory = null;
    this.device.onNeedsReset = null;
    this.onClose?.(reason);
  }
}

const sameTable = (a: readonly MemoryRegionDesc[], b: readonly MemoryRegionDesc[]): boolean =>
  a.length === b.length &&
  a.every(
    (r, i) =>
      r.guestPhysAddr === b[i].guestPhysAddr &&
      r.memorySize === b[i].memorySize &&
      r.userspaceAddr === b[i].userspaceAddr &&
      r.mmapOffset === b[i].mmapOffset,
  );
