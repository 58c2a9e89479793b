import { EventEmitter } from 'node:events';
import { decodeConfig } from '../protocol/config.ts';
import {
  EVENT_QUEUE,
  Feature,
  IRQ_RESPONSE_SIZE,
  IrqStatus,
  IrqType,
  MessageType,
  REQUEST_QUEUE,
  RESPONSE_SIZE,
  Status,
  bit,
  messageTypeName,
  Direction,
} from '../protocol/constants.ts';
import { ProtocolError } from '../protocol/errors.ts';
import { decodeIrqResponse, decodeResponse, encodeIrqRequest, encodeRequest } from '../protocol/messages.ts';
import { decodeNames } from '../protocol/names.ts';
import type { VirtioDriverTransport } from '../virtio/driver-transport.ts';
import { DriverQueue, type BufferLayout } from '../virtqueue/driver-queue.ts';
import { ringOptions } from '../virtqueue/split-ring.ts';
import { VirtqueueError } from '../virtqueue/virtqueue-error.ts';
import { GpioLineError } from './gpio-line-error.ts';
import { SerialLock } from './serial-lock.ts';
import { wantedFeatures, type FeatureChoice } from './wanted-features.ts';

/** The device answered a request with status ERR. */
export class GpioRequestError extends Error {
  constructor(
    readonly type: number,
    readonly gpio: number,
    readonly value: number,
  ) {
    super(`${messageTypeName(type)} gpio=${gpio} value=${value}: device replied ERR`);
    this.name = 'GpioRequestError';
  }
}

export class GpioTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer from the device within ${ms} ms`);
    this.name = 'GpioTimeoutError';
  }
}

/** Runs when a line's interrupt fires; the line stays masked until it returns (or its promise settles). */
export type IrqHandler = (line: number, timestampNs: bigint) => void | Promise<void>;

/** Features: each optional feature is negotiated when offered unless set false here. */
export interface GpioDriverOptions extends FeatureChoice {
  queueSize?: number;
  /** Diagnostic timeout for one request; the spec sets no bound, so the default is none (protocol.md R13). */
  requestTimeoutMs?: number;
}

export interface RawReply {
  status: number;
  value: number;
  len: number;
  data: Uint8Array;
}

interface Pending {
  resolve: (r: RawReply) => void;
  reject: (e: Error) => void;
  done: boolean;
}

interface IrqLine {
  type: IrqType;
  /** Meant to be enabled: cleared before SET_IRQ_TYPE NONE goes out. */
  enabled: boolean;
  /** The line's eventq buffer is with the device. */
  inFlight: boolean;
  /** Counts completed enables; `queuedGen` is the count when the buffer in flight was queued. */
  enableGen: number;
  queuedGen: number;
  /** The handler for the last interrupt is still running (the line is masked). */
  handling: boolean;
  handler: IrqHandler | null;
}

export interface GpioDriverEvents {
  /** The device broke a rule the driver can see (VALID while disabled, bad used length...). */
  violation: [message: string];
}

/**
 * A virtio-gpio driver over any VirtioDriverTransport, following Linux's gpio-virtio: one request
 * in flight per line, parallel across lines; one eventq buffer per line, queued only after the
 * type is enabled and re-queued only after the handler finished (that re-queue is the ack).
 * The rules it keeps are docs/protocol.md §4 (R1–R13).
 */
export class GpioDriver extends EventEmitter<GpioDriverEvents> {
  ngpio = 0;
  names: string[] = [];
  irqSupported = false;
  features = 0n;
  private requestq!: DriverQueue<Pending>;
  private eventq: DriverQueue<number> | null = null;
  private readonly lineLock = new SerialLock<number>();
  private readonly irqLock = new SerialLock<number>();
  private irqLines: IrqLine[] = [];
  private spaceWaiters: Array<() => void> = [];
  private useIndirect = false;
  private readonly kickScheduled = [false, false];
  private closed = false;

  private constructor(
    readonly transport: VirtioDriverTransport,
    private readonly opts: GpioDriverOptions,
  ) {
    super();
  }

  static async open(transport: VirtioDriverTransport, opts: GpioDriverOptions = {}): Promise<GpioDriver> {
    const d = new GpioDriver(transport, opts);
    await d.probe();
    return d;
  }

  private async probe(): Promise<void> {
    const offered = await this.transport.deviceFeatures();
    if (!(offered & bit(Feature.VERSION_1))) throw new Error('device does not offer VIRTIO_F_VERSION_1');
    this.features = offered & wantedFeatures(this.opts);
    this.irqSupported = (this.features & bit(Feature.GPIO_F_IRQ)) !== 0n;
    // 16-bit field with a 16-bit read, 32-bit with a 32-bit read (protocol.md R2, like Linux since 2025).
    const ngpio = await this.transport.readConfig(0, 2);
    const namesSize = await this.transport.readConfig(4, 4);
    const config = new Uint8Array(8);
    config.set(ngpio, 0);
    config.set(namesSize, 4);
    const { ngpio: n, namesSize: size } = decodeConfig(config);
    this.ngpio = n;
    const qsize = this.opts.queueSize ?? 256;
    const rings = await this.transport.activate(this.features, this.irqSupported ? [qsize, qsize] : [qsize]);
    const ringOpts = ringOptions(rings.features);
    this.useIndirect = ringOpts.indirect;
    const queue = <T>(index: number) =>
      new DriverQueue<T>(rings.memory, rings.layouts[index], rings.allocator, ringOpts);
    this.requestq = queue<Pending>(REQUEST_QUEUE);
    this.transport.onInterrupt(REQUEST_QUEUE, () => this.requestsDone());
    if (this.irqSupported) {
      this.eventq = queue<number>(EVENT_QUEUE);
      this.transport.onInterrupt(EVENT_QUEUE, () => this.eventsDone());
    }
    this.irqLines = Array.from({ length: this.ngpio }, () => ({
      type: IrqType.NONE,
      enabled: false,
      inFlight: false,
      enableGen: 0,
      queuedGen: 0,
      handling: false,
      handler: null,
    }));
    this.names = Array.from({ length: this.ngpio }, () => '');
    if (size > 0) {
      const r = await this.raw(MessageType.GET_LINE_NAMES, 0, 0, { writable: [1 + size] });
      if (r.status === Status.OK && r.len === 1 + size)
        this.names = decodeNames(r.data.subarray(1), n) ?? this.names;
    }
  }

  // --- requestq ---

  /**
   * Sends one request and returns the raw reply. Requests for one line go one at a time
   * (protocol.md R4; GET_LINE_NAMES counts as line -1); `layout` overrides the descriptor layout.
   */
  raw(
    type: number,
    gpio: number,
    value: number,
    layout: Partial<BufferLayout> & { request?: Uint8Array } = {},
  ): Promise<RawReply> {
    const key = type === MessageType.GET_LINE_NAMES ? -1 : gpio;
    return this.lineLock.run(key, async () => {
      const bytes = layout.request ?? encodeRequest({ type, gpio, value });
      const b: BufferLayout = {
        readable: layout.readable ?? [bytes],
        writable: layout.writable ?? [RESPONSE_SIZE],
        indirect: layout.indirect ?? false,
      };
      return this.submit(b, type, gpio);
    });
  }

  /** A request that must succeed: returns the response value, throws GpioRequestError on ERR. */
  async call(type: number, gpio: number, value = 0): Promise<number> {
    const r = await this.raw(type, gpio, value);
    const resp = decodeResponse(r.data, r.len);
    if (resp.status !== Status.OK) throw new GpioRequestError(type, gpio, value);
    return resp.value;
  }

  getDirection(line: number): Promise<Direction> {
    return this.call(MessageType.GET_DIRECTION, line) as Promise<Direction>;
  }
  async setDirection(line: number, dir: Direction): Promise<void> {
    const st = this.irqLines[line];
    if (dir !== Direction.NONE || !this.irqSupported || !st) {
      await this.call(MessageType.SET_DIRECTION, line, dir);
      return;
    }
    // Direction NONE also resets the line's interrupt on the device (type NONE, the held buffer
    // back INVALID, protocol.md D9): mark it disabled first, as disableIrq does, or the INVALID is re-queued.
    await this.irqLock.run(line, async () => {
      st.enabled = false;
      await this.call(MessageType.SET_DIRECTION, line, dir);
      st.type = IrqType.NONE;
    });
  }
  async getValue(line: number): Promise<0 | 1> {
    return ((await this.call(MessageType.GET_VALUE, line)) & 1) as 0 | 1;
  }
  async setValue(line: number, value: 0 | 1): Promise<void> {
    await this.call(MessageType.SET_VALUE, line, value);
  }

  /** `type` and `gpio` name the request in a timeout error (built only then). */
  private async submit(b: BufferLayout, type: number, gpio: number): Promise<RawReply> {
    if (this.closed) throw new GpioLineError('EBADF', 'driver closed');
    for (;;) {
      try {
        return await new Promise<RawReply>((resolve, reject) => {
          const p: Pending = { resolve, reject, done: false };
          this.requestq.add(b, p);
          this.kickSoon(REQUEST_QUEUE);
          const ms = this.opts.requestTimeoutMs;
          if (ms !== undefined) {
            const t = setTimeout(() => {
              if (p.done) return;
              p.done = true;
              reject(new GpioTimeoutError(`${messageTypeName(type)} gpio=${gpio}`, ms));
            }, ms);
            p.resolve = (r) => {
              clearTimeout(t);
              resolve(r);
            };
          }
        });
      } catch (e) {
        if (!(e instanceof VirtqueueError && e.kind === 'full')) throw e;
        await new Promise<void>((r) => this.spaceWaiters.push(r));
      }
    }
  }

  /**
   * Notifies the device once for everything added in this turn of the event loop: chains
   * queued by a burst of completions go out with one kick instead of one each.
   */
  private kickSoon(queue: number): void {
    if (this.kickScheduled[queue]) return;
    this.kickScheduled[queue] = true;
    setImmediate(() => {
      this.kickScheduled[queue] = false;
      const q = queue === REQUEST_QUEUE ? this.requestq : this.eventq;
      if (!this.closed && q?.kickNeeded()) this.transport.kick(queue);
    });
  }

  private requestsDone(): void {
    let used;
    try {
      used = this.requestq.collect();
    } catch (e) {
      this.emit('violation', (e as Error).message);
      return;
    }
    for (const u of used) {
      if (u.token.done) continue;
      u.token.done = true;
      u.token.resolve({ status: u.data[0] ?? Status.ERR, value: u.data[1] ?? 0, len: u.len, data: u.data });
    }
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }

  // --- interrupts ---

  /** Enable (or change) a line's interrupt: NONE first when another type is on, then the type, then unmask (protocol.md R6, R11). */
  enableIrq(line: number, type: IrqType, handler: IrqHandler): Promise<void> {
    if (type === IrqType.NONE) return this.disableIrq(line);
    return this.irqLock.run(line, async () => {
      const st = this.irqLine(line);
      if (st.enabled && st.type === type) {
        st.handler = handler;
        return;
      }
      if (st.enabled) await this.disableNow(line, st);
      await this.call(MessageType.SET_IRQ_TYPE, line, type);
      st.type = type;
      st.handler = handler;
      st.enabled = true;
      st.enableGen++;
      if (!st.inFlight && !st.handling) this.queueIrqBuffer(line, st);
    });
  }

  /** Disable: mark it first, then SET_IRQ_TYPE NONE; the device hands the buffer back INVALID (protocol.md R10). */
  disableIrq(line: number): Promise<void> {
    return this.irqLock.run(line, () => this.disableNow(line, this.irqLine(line)));
  }

  /** The device's interrupt type for a line as this driver last set it. */
  irqType(line: number): IrqType {
    return this.irqLine(line).type;
  }

  /** Whether the line's eventq buffer is with the device (the line is unmasked). */
  irqArmed(line: number): boolean {
    return this.irqLine(line).inFlight;
  }

  private async disableNow(line: number, st: IrqLine): Promise<void> {
    if (!st.enabled && st.type === IrqType.NONE) return;
    st.enabled = false;
    await this.call(MessageType.SET_IRQ_TYPE, line, IrqType.NONE);
    st.type = IrqType.NONE;
  }

  private irqLine(line: number): IrqLine {
    if (!this.irqSupported)
      throw new GpioLineError('ENODEV', 'the device did not negotiate VIRTIO_GPIO_F_IRQ');
    const st = this.irqLines[line];
    if (!st) throw new GpioLineError('EINVAL', `line ${line} out of range (0..${this.ngpio - 1})`);
    return st;
  }

  private queueIrqBuffer(line: number, st: IrqLine): void {
    const q = this.eventq as DriverQueue<number>;
    st.inFlight = true;
    st.queuedGen = st.enableGen;
    q.add(
      { readable: [encodeIrqRequest(line)], writable: [IRQ_RESPONSE_SIZE], indirect: this.useIndirect },
      line,
    );
    this.kickSoon(EVENT_QUEUE);
  }

  private eventsDone(): void {
    const q = this.eventq as DriverQueue<number>;
    let used;
    try {
      used = q.collect();
    } catch (e) {
      this.emit('violation', (e as Error).message);
      return;
    }
    const now = process.hrtime.bigint();
    for (const u of used) {
      const line = u.token;
      const st = this.irqLines[line];
      st.inFlight = false;
      let status: IrqStatus;
      try {
        status = decodeIrqResponse(u.data, u.len);
      } catch (e) {
        // Linux drops such a buffer and the line stays dead; say so.
        this.emit('violation', `line ${line}: ${(e as ProtocolError).message}`);
        continue;
      }
      // A VALID for a disabled line, or from a buffer queued under an earlier enable, fired before
      // the device served the disable: the requestq and eventq notifications arrive in either order,
      // so it is no violation. Drop it; a stale buffer is re-queued below like an INVALID one.
      const stale = st.queuedGen !== st.enableGen;
      if (status === IrqStatus.VALID && st.enabled && !stale) {
        void this.dispatch(line, st, now);
      } else if (st.enabled && !st.handling) {
        if (stale) {
          this.queueIrqBuffer(line, st); // re-enabled while the old buffer was out (protocol.md R9)
        } else {
          // The buffer was queued under the current enable, so the device no longer has the line
          // enabled; re-queueing would bounce INVALID forever.
          this.emit('violation', `line ${line}: eventq buffer returned INVALID while enabled`);
        }
      }
    }
  }

  private async dispatch(line: number, st: IrqLine, timestampNs: bigint): Promise<void> {
    st.handling = true;
    try {
      await st.handler?.(line, timestampNs);
    } catch {
      // a failing handler still acknowledges
    } finally {
      st.handling = false;
      if (st.enabled && !st.inFlight && !this.closed) this.queueIrqBuffer(line, st);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.close();
  }
}
