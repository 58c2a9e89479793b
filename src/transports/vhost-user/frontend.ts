import {
  closeFd,
  closeQuietly,
  eventfd,
  eventfdWrite,
  memfdCreate,
  mmap,
  munmap,
  socketConnect,
} from '../../native/index.ts';
import type { ActiveRings, VirtioDriverTransport } from '../../virtio/driver-transport.ts';
import { bit } from '../../virtio/feature-bits.ts';
import { GuestAllocator } from '../../virtqueue/guest-allocator.ts';
import { GuestMemory } from '../../virtqueue/guest-memory.ts';
import { placeRings } from '../../virtqueue/ring-placement.ts';
import { VhostUserChannel, type Message } from './channel.ts';
import {
  CONFIG_HEADER_SIZE,
  Flag,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  REPLY_FLAGS,
  Request,
  decodeConfigPayload,
  decodeU64,
  decodeVringState,
  encodeConfigPayload,
  encodeMemoryTable,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  requestName,
} from './message.ts';
import { EventfdWatch } from './eventfd-watch.ts';

/** The back-end broke the protocol, went silent, or went away. */
export class VhostUserError extends Error {
  override name = 'VhostUserError';
}

export interface FrontendOptions {
  /** How long to wait for any reply (default 5000 ms). */
  timeoutMs?: number;
  /** Guest memory size (default 4 MiB). */
  memoryBytes?: number;
  /** Keep the process alive while connected (default true; close() releases it). */
  ref?: boolean;
}

const GUEST_BASE = 0x4000_0000;
const USER_BASE = 0x7f10_0000_0000n;
const WANT_PROTOCOL = bit(ProtocolFeature.MQ) | bit(ProtocolFeature.REPLY_ACK) | bit(ProtocolFeature.CONFIG);

interface Waiter {
  request: number;
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface RingFds {
  kick: number;
  call: number;
  watch: EventfdWatch;
}

/**
 * Drives any vhost-user back-end the way QEMU ≥ 9 does: owns guest memory as a memfd, negotiates,
 * sets up the rings with kick/call eventfds, and gives a driver a VirtioDriverTransport.
 */
export class VhostUserFrontend implements VirtioDriverTransport {
  readonly deviceId: number;
  private readonly channel: VhostUserChannel;
  private waiters: Waiter[] = [];
  private offered = 0n;
  private protocol = 0n;
  private queueNum = 0;
  private config: Uint8Array | null = null;
  private memfd: number | null = null;
  private mapping: ArrayBuffer | null = null;
  private rings: RingFds[] = [];
  private readonly handlers = new Map<number, () => void>();
  private closeReason: string | null = null;
  private readonly timeoutMs: number;

  private constructor(
    fd: number,
    deviceId: number,
    private readonly opts: FrontendOptions,
  ) {
    this.deviceId = deviceId;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.channel = new VhostUserChannel(fd, {
      message: (m) => this.received(m),
      closed: (reason) => {
        this.closeReason = reason;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(
            new VhostUserError(
              `back-end connection closed (${reason}) while waiting for ${requestName(w.request)}`,
            ),
          );
        }
      },
    });
    this.channel.ref(opts.ref ?? true);
  }

  /** Connects and runs QEMU's connect-time sequence (docs/protocol.md §8). */
  static async connect(
    path: string,
    deviceId: number,
    opts: FrontendOptions = {},
  ): Promise<VhostUserFrontend> {
    let fd: number;
    try {
      fd = socketConnect(path);
    } catch (e) {
      throw new VhostUserError(`cannot connect to ${path}: ${(e as Error).message}`);
    }
    const f = new VhostUserFrontend(fd, deviceId, opts);
    try {
      await f.handshake();
    } catch (e) {
      f.channel.close('handshake failed');
      throw e;
    }
    return f;
  }

  get protocolFeatures(): bigint {
    return this.protocol;
  }

  get queueCount(): number {
    return this.queueNum;
  }

  /** Virtio features the back-end offers (bit 30 removed: never shown to a driver). */
  async deviceFeatures(): Promise<bigint> {
    return this.offered & ~PROTOCOL_FEATURES_BIT;
  }

  /** Config bytes from the one GET_CONFIG of offset 0, size 8 (the rust-vmm back-end slices without checks). */
  async readConfig(offset: number, size: number): Promise<Uint8Array> {
    if (!this.config) this.config = await this.getConfig(0, 8);
    if (offset + size > this.config.length)
      throw new RangeError(`config read [${offset}, +${size}) outside 8 bytes`);
    return this.config.slice(offset, offset + size);
  }

  async getConfig(offset: number, size: number): Promise<Uint8Array> {
    const r = await this.call(
      Request.GET_CONFIG,
      encodeConfigPayload({ offset, size, flags: 0, data: new Uint8Array(size) }),
    );
    const c = decodeConfigPayload(r.payload);
    if (!c || c.size !== size || r.payload.length !== CONFIG_HEADER_SIZE + size)
      throw new VhostUserError(
        `GET_CONFIG reply has ${r.payload.length} bytes, expected ${CONFIG_HEADER_SIZE + size}`,
      );
    return c.data.slice();
  }

  /** QEMU's start sequence (docs/protocol.md §8), then one kick per ring. */
  async activate(features: bigint, queueSizes: readonly number[]): Promise<ActiveRings> {
    if (queueSizes.length > this.queueNum) throw new VhostUserError(`back-end has ${this.queueNum} queues`);
    const accepted = features & this.offered;
    const protocolOn = (this.offered & PROTOCOL_FEATURES_BIT) !== 0n;
    await this.configure(
      Request.SET_FEATURES,
      encodeU64(accepted | (protocolOn ? PROTOCOL_FEATURES_BIT : 0n)),
    );

    const bytes = this.opts.memoryBytes ?? 4 << 20;
    this.memfd = memfdCreate('vgpio-guest', bytes);
    this.mapping = mmap(this.memfd, bytes, 0, true);
    const memory = new GuestMemory([{ guestPhysAddr: GUEST_BASE, bytes: new Uint8Array(this.mapping) }]);
    await this.configure(
      Request.SET_MEM_TABLE,
      encodeMemoryTable([
        {
          guestPhysAddr: BigInt(GUEST_BASE),
          memorySize: BigInt(bytes),
          userspaceAddr: USER_BASE,
          mmapOffset: 0n,
        },
      ]),
      [this.memfd],
    );

    const { layouts, end: at } = placeRings(queueSizes, GUEST_BASE);
    const user = (gpa: number) => USER_BASE + BigInt(gpa - GUEST_BASE);
    for (const [i, l] of layouts.entries()) {
      const kick = eventfd(0);
      const call = eventfd(0);
      // Our own eventfd: a failed read means it was closed under us, and nothing more will come.
      const watch = new EventfdWatch(call, () => this.handlers.get(i)?.());
      if (this.opts.ref === false) watch.unref();
      this.rings.push({ kick, call, watch });
      await this.configure(Request.SET_VRING_NUM, encodeVringState({ index: i, num: l.size }));
      await this.configure(Request.SET_VRING_BASE, encodeVringState({ index: i, num: 0 }));
      await this.configure(
        Request.SET_VRING_ADDR,
        encodeVringAddr({
          index: i,
          flags: 0,
          desc: user(l.descAddr),
          used: user(l.usedAddr),
          avail: user(l.availAddr),
          log: 0n,
        }),
      );
      await this.configure(Request.SET_VRING_KICK, encodeU64(BigInt(i)), [kick]);
      await this.configure(Request.SET_VRING_CALL, encodeU64(BigInt(i)), [call]);
    }
    if (protocolOn)
      for (const i of layouts.keys())
        await this.configure(Request.SET_VRING_ENABLE, encodeVringState({ index: i, num: 1 }));
    for (const i of layouts.keys()) this.kick(i);
    return {
      memory,
      allocator: new GuestAllocator(at, GUEST_BASE + bytes - at),
      layouts,
      features: accepted,
    };
  }

  kick(queueIndex: number): void {
    const r = this.rings[queueIndex];
    if (r) eventfdWrite(r.kick, 1n);
  }

  onInterrupt(queueIndex: number, handler: () => void): void {
    this.handlers.set(queueIndex, handler);
  }

  /** Stops the rings cleanly (SET_VRING_ENABLE 0, GET_VRING_BASE) and returns where each stopped. */
  async stop(): Promise<number[]> {
    const bases: number[] = [];
    if (this.closeReason) return bases;
    if (this.offered & PROTOCOL_FEATURES_BIT)
      for (const i of this.rings.keys())
        await this.configure(Request.SET_VRING_ENABLE, encodeVringState({ index: i, num: 0 }));
    for (const i of this.rings.keys()) {
      const r = await this.call(Request.GET_VRING_BASE, encodeVringState({ index: i, num: 0 }));
      if (r.payload.length !== 8)
        throw new VhostUserError(`GET_VRING_BASE reply has ${r.payload.length} bytes`);
      bases.push(decodeVringState(r.payload).num);
    }
    return bases;
  }

  async close(): Promise<void> {
    try {
      if (!this.closeReason && this.rings.length > 0) await this.stop();
    } catch {
      // closing anyway
    }
    this.channel.close('front-end closed');
    for (const r of this.rings) {
      r.watch.close();
      closeQuietly(r.kick);
      closeQuietly(r.call);
    }
    this.rings = [];
    if (this.mapping) munmap(this.mapping);
    this.mapping = null;
    if (this.memfd !== null) closeFd(this.memfd);
    this.memfd = null;
  }

  /** Sends a message and waits for its reply (flags must be exactly REPLY_FLAGS). */
  call(
    request: number,
    payload?: Uint8Array,
    fds: number[] = [],
    flags: number = Flag.VERSION,
  ): Promise<Message> {
    if (this.closeReason)
      return Promise.reject(new VhostUserError(`back-end connection closed (${this.closeReason})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new VhostUserError(`no reply to ${requestName(request)} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiters.push({ request, resolve, reject, timer });
      this.channel.send(request, flags, payload, fds);
    });
  }

  /** Sends a message with no reply of its own; with REPLY_ACK, asks for and checks the ack. */
  async configure(request: number, payload?: Uint8Array, fds: number[] = []): Promise<void> {
    if (!(this.protocol & bit(ProtocolFeature.REPLY_ACK))) {
      this.send(request, payload, fds);
      return;
    }
    const r = await this.call(request, payload, fds, Flag.VERSION | Flag.NEED_REPLY);
    if (r.payload.length !== 8)
      throw new VhostUserError(`${requestName(request)} ack has ${r.payload.length} bytes`);
    const status = decodeU64(r.payload);
    if (status !== 0n) throw new VhostUserError(`back-end refused ${requestName(request)} (ack ${status})`);
  }

  /** Fire and forget (no reply expected). */
  send(request: number, payload?: Uint8Array, fds: number[] = [], flags: number = Flag.VERSION): void {
    this.channel.send(request, flags, payload, fds);
  }

  private async handshake(): Promise<void> {
    this.offered = await this.u64(Request.GET_FEATURES);
    if (this.offered & PROTOCOL_FEATURES_BIT) {
      const offeredProtocol = await this.u64(Request.GET_PROTOCOL_FEATURES);
      this.protocol = offeredProtocol & WANT_PROTOCOL;
      this.send(Request.SET_PROTOCOL_FEATURES, encodeU64(this.protocol));
      if (this.protocol & bit(ProtocolFeature.MQ))
        this.queueNum = Number(await this.u64(Request.GET_QUEUE_NUM));
    }
    if (this.queueNum === 0) this.queueNum = 2;
    await this.configure(Request.SET_OWNER);
  }

  private async u64(request: number): Promise<bigint> {
    const r = await this.call(request);
    if (r.payload.length !== 8)
      throw new VhostUserError(`${requestName(request)} reply has ${r.payload.length} bytes, expected 8`);
    return decodeU64(r.payload);
  }

  private received(m: Message): void {
    m.fds.forEach(closeQuietly);
    const i = this.waiters.findIndex((w) => w.request === m.request);
    if (i < 0) {
      this.channel.close(`unexpected message ${requestName(m.request)} from the back-end`);
      return;
    }
    const [w] = this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    if (m.flags !== REPLY_FLAGS) {
      w.reject(
        new VhostUserError(
          `reply to ${requestName(m.request)} has flags 0x${m.flags.toString(16)}, expected 0x5`,
        ),
      );
      return;
    }
    w.resolve(m);
  }
}
