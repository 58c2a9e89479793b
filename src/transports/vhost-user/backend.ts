import type { Logger } from '../../log/logger.ts';
import { eventfdWrite } from '../../native/index.ts';
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
import { MappedMemory } from './mapped-memory.ts';
import {
  CONFIG_HEADER_SIZE,
  Flag,
  MAX_FDS,
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
import { Vring, closeQuietly } from './vring.ts';

const MAX_CONFIG = 256;

export const BACKEND_PROTOCOL_FEATURES =
  (1n << BigInt(ProtocolFeature.MQ)) |
  (1n << BigInt(ProtocolFeature.REPLY_ACK)) |
  (1n << BigInt(ProtocolFeature.CONFIG)) |
  (1n << BigInt(ProtocolFeature.RESET_DEVICE));

/** A message we refuse: answered with a failed REPLY_ACK where possible, else logged (or the peer dropped). */
class Refusal extends Error {}

/**
 * The back-end side of one vhost-user connection: the protocol state machine that turns
 * messages into ring and memory state for a VirtioDevice. Knows nothing of what the device is.
 */
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
  private onClose: ((reason: string) => void) | null = null;

  constructor(
    fd: number,
    private readonly device: VirtioDevice,
    private readonly log: Logger,
  ) {
    this.rings = Array.from({ length: device.numQueues }, (_, i) => new Vring(i));
    device.onNeedsReset = (q, e) =>
      this.log.log('error', 'queue is malformed; the device needs a reset', { queue: q, error: e.message });
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
    return (this.protocolFeatures & (1n << BigInt(ProtocolFeature.REPLY_ACK))) !== 0n;
  }

  private handle(m: Message): void {
    const name = requestName(m.request);
    this.log.log('debug', 'message', { request: name, flags: m.flags, size: m.size, fds: m.fds.length });
    if (
      (m.flags & Flag.VERSION_MASK) !== Flag.VERSION ||
      (m.flags & ~(Flag.VERSION_MASK | Flag.NEED_REPLY)) !== 0
    ) {
      m.fds.forEach(closeQuietly);
      this.log.log('warn', 'bad message flags or version: disconnecting', { request: name, flags: m.flags });
      return this.channel.close(`bad flags 0x${m.flags.toString(16)}`);
    }
    try {
      const reply = this.dispatch(m);
      if (reply) this.channel.send(m.request, REPLY_FLAGS, reply);
      else if (m.flags & Flag.NEED_REPLY && this.replyAck)
        this.channel.send(m.request, REPLY_FLAGS, encodeU64(0n));
    } catch (e) {
      m.fds.forEach(closeQuietly);
      if (!(e instanceof Refusal)) return this.internalError(`handling ${name}`, e);
      this.log.log('warn', 'request refused', { request: name, reason: e.message });
      if (mustReply(m.request)) return this.channel.close(`cannot answer ${name}: ${e.message}`);
      if (m.flags & Flag.NEED_REPLY && this.replyAck)
        this.channel.send(m.request, REPLY_FLAGS, encodeU64(1n));
    }
  }

  /** Applies one message; returns the reply payload for messages that have one. */
  private dispatch(m: Message): Uint8Array | null {
    const fds = (n: number) => {
      if (m.fds.length !== n) throw new Refusal(`${m.fds.length} fds attached, expected ${n}`);
    };
    const size = (n: number) => {
      if (m.payload.length !== n) throw new Refusal(`payload is ${m.payload.length} bytes, expected ${n}`);
    };
    const ring = (index: number): Vring => {
      const r = this.rings[index];
      if (!r) throw new Refusal(`ring index ${index} out of range (device has ${this.rings.length})`);
      return r;
    };
    if (
      m.request !== Request.SET_MEM_TABLE &&
      m.request !== Request.SET_VRING_KICK &&
      m.request !== Request.SET_VRING_CALL &&
      m.request !== Request.SET_VRING_ERR
    )
      fds(0);

    switch (m.request) {
      case Request.GET_FEATURES:
        size(0);
        return encodeU64(this.device.offeredFeatures | PROTOCOL_FEATURES_BIT);
      case Request.SET_FEATURES: {
        size(8);
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
      case Request.GET_PROTOCOL_FEATURES:
        size(0);
        return encodeU64(BACKEND_PROTOCOL_FEATURES);
      case Request.SET_PROTOCOL_FEATURES: {
        size(8);
        const f = decodeU64(m.payload);
        if (f & ~BACKEND_PROTOCOL_FEATURES)
          throw new Refusal(
            `protocol features 0x${(f & ~BACKEND_PROTOCOL_FEATURES).toString(16)} were not offered`,
          );
        this.protocolFeatures = f;
        return null;
      }
      case Request.GET_QUEUE_NUM:
        size(0);
        return encodeU64(BigInt(this.rings.length));
      case Request.SET_OWNER:
        size(0);
        return null;
      case Request.RESET_OWNER:
      case Request.RESET_DEVICE:
        size(0);
        this.resetDevice();
        return null;
      case Request.SET_MEM_TABLE:
        this.setMemTable(m);
        return null;
      case Request.SET_VRING_NUM: {
        size(8);
        const s = decodeVringState(m.payload);
        const r = ring(s.index);
        if (!isValidQueueSize(s.num) || s.num > this.device.maxQueueSize)
          throw new Refusal(`queue size ${s.num} (max ${this.device.maxQueueSize}, power of two)`);
        if (r.live) throw new Refusal('ring is running');
        r.num = s.num;
        return null;
      }
      case Request.SET_VRING_ADDR: {
        size(VRING_ADDR_SIZE);
        const a = decodeVringAddr(m.payload);
        const r = ring(a.index);
        if (r.live) throw new Refusal('ring is running');
        r.addr = a;
        return null;
      }
      case Request.SET_VRING_BASE: {
        size(8);
        const s = decodeVringState(m.payload);
        const r = ring(s.index);
        if (r.live) throw new Refusal('ring is running');
        if (s.num > 0xffff) throw new Refusal(`base ${s.num} does not fit a split ring`);
        r.base = s.num;
        return null;
      }
      case Request.GET_VRING_BASE: {
        size(8);
        const r = ring(decodeVringState(m.payload).index);
        this.stop(r);
        r.started = false;
        return encodeVringState({ index: r.index, num: r.base });
      }
      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR: {
        size(8);
        const v = Number(decodeU64(m.payload) & 0xffffn);
        const r = ring(v & VRING_INDEX_MASK);
        if (v & ~(VRING_INDEX_MASK | VRING_NOFD))
          throw new Refusal(`reserved bits set in 0x${v.toString(16)}`);
        fds(v & VRING_NOFD ? 0 : 1);
        const fd = m.fds[0] ?? null;
        if (m.request === Request.SET_VRING_CALL) r.replace('callFd', fd);
        else if (m.request === Request.SET_VRING_ERR) r.replace('errFd', fd);
        else {
          try {
            r.setKick(
              fd,
              () => this.kicked(r),
              (error) =>
                this.log.log('warn', 'kick fd is not an eventfd: no longer polled', { ring: r.index, error }),
            );
          } catch (e) {
            throw new Refusal(`kick fd cannot be polled: ${(e as Error).message}`);
          }
          r.started = true;
          this.refresh(r);
        }
        return null;
      }
      case Request.SET_VRING_ENABLE: {
        size(8);
        if (!(this.features & PROTOCOL_FEATURES_BIT))
          throw new Refusal('protocol features were not negotiated');
        const s = decodeVringState(m.payload);
        const r = ring(s.index);
        if (s.num > 1) throw new Refusal(`enable value ${s.num}`);
        this.setEnabled(r, s.num === 1);
        return null;
      }
      case Request.GET_CONFIG: {
        const c = decodeConfigPayload(m.payload);
        if (!c || m.payload.length !== CONFIG_HEADER_SIZE + c.size)
          throw new Refusal('malformed config payload');
        if (c.size > MAX_CONFIG) throw new Refusal(`config size ${c.size} > ${MAX_CONFIG}`);
        // Bytes past the device's config space read as zero; the reply keeps the asked size.
        const data = new Uint8Array(c.size);
        for (let i = 0; i < c.size; i++) data[i] = this.device.readConfig(c.offset + i, 1)?.[0] ?? 0;
        return encodeConfigPayload({ offset: c.offset, size: c.size, flags: 0, data });
      }
      case Request.SET_CONFIG:
        throw new Refusal('the config space is read-only');
      default:
        throw new Refusal(`unsupported request ${requestName(m.request)}`);
    }
  }

  private setMemTable(m: Message): void {
    const table = decodeMemoryTable(m.payload);
    if (!table || m.payload.length !== 8 + REGION_SIZE * table.length)
      throw new Refusal('malformed memory table');
    if (table.length === 0 || table.length > MAX_FDS)
      throw new Refusal(`${table.length} regions (1..${MAX_FDS})`);
    if (m.fds.length !== table.length) throw new Refusal(`${table.length} regions but ${m.fds.length} fds`);
    if (this.memory && sameTable(table, this.memoryTable)) {
      // The same guest RAM again (QEMU re-sends it at every start): keep the mapping and what is held in it.
      m.fds.forEach(closeQuietly);
      return;
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
  }

  private setEnabled(r: Vring, on: boolean): void {
    r.enabled = on;
    if (on) this.refresh(r);
    else this.stop(r);
  }

  /** Hands the ring to the device when it is started, enabled and placeable in memory. */
  private refresh(r: Vring): void {
    if (r.live || !r.started || !r.enabled) return;
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
    try {
      if (r.live) this.device.kick(r.index);
    } catch (e) {
      this.internalError(`serving ring ${r.index}`, e);
    }
  }

  /** A bug, not bad input: end this connection, keep the process and its other devices alive. */
  private internalError(what: string, e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.log.log('error', `internal error ${what}: disconnecting`, { error: err.message, stack: err.stack });
    this.channel.close(`internal error ${what}: ${err.message}`);
  }

  private notify(r: Vring): void {
    if (r.callFd === null) return;
    try {
      eventfdWrite(r.callFd, 1n);
    } catch (e) {
      this.log.log('warn', 'call eventfd write failed', { ring: r.index, error: (e as Error).message });
    }
  }

  private resetDevice(): void {
    for (const r of this.rings) {
      this.stop(r, true);
      r.dispose();
    }
    this.device.reset();
    this.ringsRan = false;
  }

  private teardown(reason: string): void {
    for (const r of this.rings) {
      this.stop(r, true);
      r.dispose();
    }
    this.device.reset();
    this.memory?.unmap();
    this.memory = null;
    this.device.onNeedsReset = null;
    this.onClose?.(reason);
  }
}

/** Messages whose reply carries data: a refusal cannot be expressed, so the connection ends. */
const mustReply = (req: number): boolean =>
  req === Request.GET_FEATURES ||
  req === Request.GET_PROTOCOL_FEATURES ||
  req === Request.GET_QUEUE_NUM ||
  req === Request.GET_VRING_BASE ||
  req === Request.GET_CONFIG;

const sameTable = (a: readonly MemoryRegionDesc[], b: readonly MemoryRegionDesc[]): boolean =>
  a.length === b.length &&
  a.every(
    (r, i) =>
      r.guestPhysAddr === b[i].guestPhysAddr &&
      r.memorySize === b[i].memorySize &&
      r.userspaceAddr === b[i].userspaceAddr &&
      r.mmapOffset === b[i].mmapOffset,
  );
