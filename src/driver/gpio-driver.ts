import { EventEmitter } from 'node:events';
import { decodeConfig } from '../protocol/config.ts';
import {
  EVENT_QUEUE,
  Feature,
  IRQ_RESPONSE_SIZE,
  IrqStatus,
  REQUEST_SIZE,
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
import { decodeIrqResponse, encodeIrqRequest, encodeRequest } from '../protocol/messages.ts';
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

/**
 * Completion of send(): `error` is null when the device answered OK; GpioRequestError when it
 * answered ERR, ProtocolError for a malformed reply, GpioTimeoutError, or GpioLineError EBADF
 * once the driver is closed. `tag` is the caller's number given to send().
 */
export type ReplyHandler = (error: Error | null, value: number, tag: number) => void;

/** How a request's reply is handed over. */
const Settle = { RAW: 0, VALUE: 1, BIT: 2, VOID: 3, HANDLER: 4 } as const;
type Settle = (typeof Settle)[keyof typeof Settle];

/** One requestq request from its submission to its reply; pooled (steady state allocates none). */
class PendingRequest {
  settle: Settle = Settle.VOID;
  type = 0;
  gpio = 0;
  value = 0;
  /** raw() with a layout of its own; null: the 8-byte request and a 2-byte response. */
  layout: BufferLayout | null = null;
  resolve: ((v: unknown) => void) | null = null;
  reject: ((e: Error) => void) | null = null;
  handler: ReplyHandler | null = null;
  tag = 0;
  /** The next request waiting for the same line, or for ring space. */
  next: PendingRequest | null = null;
  timer: NodeJS.Timeout | null = null;
  /** Timed out: its reply, if one comes, only recycles it. */
  abandoned = false;
}

/** Requests for one line go one at a time (protocol.md R4): the one out, then the waiting ones in order. */
class LineQueue {
  active: PendingRequest | null = null;
  head: PendingRequest | null = null;
  tail: PendingRequest | null = null;
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
  private requestq!: DriverQueue<PendingRequest>;
  private eventq: DriverQueue<number> | null = null;
  private readonly irqLock = new SerialLock<number>();
  private irqLines: IrqLine[] = [];
  /** Per line, then one for GET_LINE_NAMES (line -1); other numbers (out of range) in `otherLines`. */
  private lineQueues: LineQueue[] = [];
  private readonly otherLines = new Map<number, LineQueue>();
  /** Requests whose line is free but the ring was full, in order. */
  private spaceHead: PendingRequest | null = null;
  private spaceTail: PendingRequest | null = null;
  private readonly pool: PendingRequest[] = [];
  /** The standard chain's request, refilled per request (its response is RESPONSE_SIZE bytes). */
  private readonly requestBytes = new Uint8Array(REQUEST_SIZE);
  private readonly visitReply = (r: PendingRequest, len: number, data: Uint8Array): void =>
    this.replied(r, len, data);
  /** Inside requestsDone(): chains added now are kicked once at its end. */
  private completing = false;
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
      new DriverQueue<T>(rings.memory, rings.layouts[index], rings.allocator, { ...ringOpts, slots: true });
    this.requestq = queue<PendingRequest>(REQUEST_QUEUE);
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
    this.lineQueues = Array.from({ length: this.ngpio + 1 }, () => new LineQueue());
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
    const own =
      layout.request !== undefined ||
      layout.readable !== undefined ||
      layout.writable !== undefined ||
      layout.indirect !== undefined;
    const b: BufferLayout | null = own
      ? {
          readable: layout.readable ?? [layout.request ?? encodeRequest({ type, gpio, value })],
          writable: layout.writable ?? [RESPONSE_SIZE],
          indirect: layout.indirect ?? false,
        }
      : null;
    return this.promise<RawReply>(Settle.RAW, type, gpio, value, b);
  }

  /** A request that must succeed: returns the response value, throws GpioRequestError on ERR. */
  call(type: number, gpio: number, value = 0): Promise<number> {
    return this.promise<number>(Settle.VALUE, type, gpio, value, null);
  }

  /**
   * The callback form of call(), for bulk work: no promise, nothing allocated per request in
   * steady state. `handler(error, value, tag)` runs once the reply is collected. Requests still
   * go one at a time per line (protocol.md R4); every chain added in one turn of the event loop
   * goes out with one kick (flush() kicks now), and requests sent from a handler go out with one
   * kick when the batch of replies it belongs to has been handled.
   */
  send(type: number, gpio: number, value: number, handler: ReplyHandler, tag = 0): void {
    const r = this.take(Settle.HANDLER, type, gpio, value, null);
    r.handler = handler;
    r.tag = tag;
    this.enqueue(r);
  }

  /** Notifies the device now of every request sent so far, instead of at the end of this turn. */
  flush(): void {
    if (!this.closed && !this.completing && this.requestq.kickNeeded()) this.transport.kick(REQUEST_QUEUE);
  }

  /** GET_VALUE of many lines as one batch (one kick), resolved once with the levels in order. */
  getValues(lines: readonly number[]): Promise<Array<0 | 1>> {
    return new Promise((resolve, reject) => {
      const out = new Array<0 | 1>(lines.length).fill(0);
      let left = lines.length;
      let failed = false;
      const done: ReplyHandler = (e, v, i) => {
        if (failed) return;
        if (e !== null) {
          failed = true;
          reject(e);
        } else {
          out[i] = (v & 1) as 0 | 1;
          if (--left === 0) resolve(out);
        }
      };
      if (left === 0) resolve(out);
      for (let i = 0; i < lines.length; i++) this.send(MessageType.GET_VALUE, lines[i], 0, done, i);
      this.flush();
    });
  }

  /** SET_VALUE of many lines (`values[i]` for `lines[i]`) as one batch, resolved once all are set. */
  setValues(lines: readonly number[], values: readonly (0 | 1)[]): Promise<void> {
    if (values.length !== lines.length)
      return Promise.reject(new RangeError(`${lines.length} lines but ${values.length} values`));
    return new Promise((resolve, reject) => {
      let left = lines.length;
      let failed = false;
      const done: ReplyHandler = (e) => {
        if (failed) return;
        if (e !== null) {
          failed = true;
          reject(e);
        } else if (--left === 0) resolve();
      };
      if (left === 0) resolve();
      for (let i = 0; i < lines.length; i++) this.send(MessageType.SET_VALUE, lines[i], values[i], done, i);
      this.flush();
    });
  }

  getDirection(line: number): Promise<Direction> {
    return this.promise<Direction>(Settle.VALUE, MessageType.GET_DIRECTION, line, 0, null);
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
  getValue(line: number): Promise<0 | 1> {
    return this.promise<0 | 1>(Settle.BIT, MessageType.GET_VALUE, line, 0, null);
  }
  setValue(line: number, value: 0 | 1): Promise<void> {
    return this.promise<void>(Settle.VOID, MessageType.SET_VALUE, line, value, null);
  }

  private promise<R>(
    settle: Settle,
    type: number,
    gpio: number,
    value: number,
    b: BufferLayout | null,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const r = this.take(settle, type, gpio, value, b);
      r.resolve = resolve as (v: unknown) => void;
      r.reject = reject;
      this.enqueue(r);
    });
  }

  private take(
    settle: Settle,
    type: number,
    gpio: number,
    value: number,
    b: BufferLayout | null,
  ): PendingRequest {
    const r = this.pool.pop() ?? new PendingRequest();
    r.settle = settle;
    r.type = type;
    r.gpio = gpio;
    r.value = value;
    r.layout = b;
    return r;
  }

  private lineQueue(r: PendingRequest): LineQueue {
    const key = r.type === MessageType.GET_LINE_NAMES ? -1 : r.gpio;
    if (key >= 0 && key < this.ngpio) return this.lineQueues[key];
    if (key === -1) return this.lineQueues[this.ngpio];
    let q = this.otherLines.get(key);
    if (q === undefined) this.otherLines.set(key, (q = new LineQueue()));
    return q;
  }

  private enqueue(r: PendingRequest): void {
    if (this.closed) return this.deliver(r, new GpioLineError('EBADF', 'driver closed'), null, 0, true);
    const q = this.lineQueue(r);
    if (q.active !== null) {
      if (q.tail !== null) q.tail.next = r;
      else q.head = r;
      q.tail = r;
      return;
    }
    q.active = r;
    this.start(r);
  }

  /** The request holds its line: place it, or wait for ring space behind the ones already waiting. */
  private start(r: PendingRequest): void {
    if (this.closed) {
      this.lineDone(r);
      return this.deliver(r, new GpioLineError('EBADF', 'driver closed'), null, 0, true);
    }
    if (this.spaceHead === null && this.place(r)) return;
    if (this.spaceTail !== null) this.spaceTail.next = r;
    else this.spaceHead = r;
    this.spaceTail = r;
  }

  /** Adds the request's chain; false when the ring is full (a reply will free room). */
  private place(r: PendingRequest): boolean {
    const b = r.layout;
    if (b === null) {
      // le16 type, le16 gpio, le32 value (docs/protocol.md §1), into the one reused request buffer.
      // (Written out here, as protocol/messages.ts's encodeRequest does: calling a shared encoder from
      // this path made processes settle into allocating per request far more often.)
      const q = this.requestBytes;
      const v = r.value >>> 0;
      q[0] = r.type & 0xff;
      q[1] = (r.type >>> 8) & 0xff;
      q[2] = r.gpio & 0xff;
      q[3] = (r.gpio >>> 8) & 0xff;
      q[4] = v & 0xff;
      q[5] = (v >>> 8) & 0xff;
      q[6] = (v >>> 16) & 0xff;
      q[7] = v >>> 24;
    }
    try {
      if (b === null) this.requestq.addPair(this.requestBytes, RESPONSE_SIZE, r);
      else this.requestq.add(b, r);
    } catch (e) {
      if (e instanceof VirtqueueError && e.kind === 'full') return false;
      this.lineDone(r);
      this.deliver(r, e instanceof Error ? e : new Error(String(e)), null, 0, true);
      return true;
    }
    const ms = this.opts.requestTimeoutMs;
    if (ms !== undefined) r.timer = setTimeout(this.timedOut, ms, r, ms);
    this.kickSoon(REQUEST_QUEUE);
    return true;
  }

  private readonly timedOut = (r: PendingRequest, ms: number): void => {
    r.timer = null;
    r.abandoned = true; // its chain is still the device's: the record is recycled when it comes back
    this.lineDone(r);
    this.deliver(r, new GpioTimeoutError(`${messageTypeName(r.type)} gpio=${r.gpio}`, ms), null, 0, false);
  };

  /** The line's request is done: the next one waiting for the line goes. */
  private lineDone(r: PendingRequest): void {
    const q = this.lineQueue(r);
    if (q.active === r) q.active = null;
    const next = q.head;
    if (next !== null) {
      q.head = next.next;
      if (q.head === null) q.tail = null;
      next.next = null;
      q.active = next;
      this.start(next);
    } else if (q.active === null && r.gpio >= this.ngpio && r.type !== MessageType.GET_LINE_NAMES)
      this.otherLines.delete(r.gpio);
  }

  /**
   * Notifies the device once for everything added in this turn of the event loop: chains
   * queued by a burst of completions go out with one kick instead of one each.
   */
  private kickSoon(queue: number): void {
    if (this.kickScheduled[queue] || (queue === REQUEST_QUEUE && this.completing)) return;
    this.kickScheduled[queue] = true;
    setImmediate(this.kickLater, queue);
  }

  private readonly kickLater = (queue: number): void => {
    this.kickScheduled[queue] = false;
    const q = queue === REQUEST_QUEUE ? this.requestq : this.eventq;
    if (!this.closed && q?.kickNeeded()) this.transport.kick(queue);
  };

  private requestsDone(): void {
    this.completing = true;
    try {
      this.requestq.collectEach(this.visitReply);
      while (this.spaceHead !== null) {
        const r = this.spaceHead;
        if (!this.place(r)) break;
        this.spaceHead = r.next;
        if (this.spaceHead === null) this.spaceTail = null;
        r.next = null;
      }
    } catch (e) {
      this.emit('violation', (e as Error).message);
    } finally {
      this.completing = false;
    }
    // Requests the replies released (next on their line, sent from handlers): one kick.
    if (!this.closed && this.requestq.kickNeeded()) this.transport.kick(REQUEST_QUEUE);
  }

  private replied(r: PendingRequest, len: number, data: Uint8Array): void {
    if (r.abandoned) {
      this.recycle(r);
      return;
    }
    if (r.timer !== null) {
      clearTimeout(r.timer);
      r.timer = null;
    }
    this.lineDone(r);
    const status = data.length > 0 ? data[0] : Status.ERR;
    const value = data.length > 1 ? data[1] : 0;
    if (r.settle === Settle.RAW)
      return this.deliver(r, null, { status, value, len, data: data.slice() }, value, true);
    let error: Error | null = null;
    if (len !== RESPONSE_SIZE || data.length < RESPONSE_SIZE)
      error = new ProtocolError('size', `response used length ${len}, expected ${RESPONSE_SIZE}`);
    else if (status !== Status.OK && status !== Status.ERR)
      error = new ProtocolError('range', `response status ${status}`);
    else if (status === Status.ERR) error = new GpioRequestError(r.type, r.gpio, r.value);
    this.deliver(r, error, null, value, true);
  }

  /** Hands the outcome over; `recycle` once the ring no longer holds the request. */
  private deliver(
    r: PendingRequest,
    error: Error | null,
    raw: RawReply | null,
    value: number,
    recycle: boolean,
  ): void {
    const { settle, resolve, reject, handler, tag } = r;
    if (recycle) this.recycle(r);
    else {
      r.resolve = r.reject = null;
      r.handler = null;
    }
    if (settle === Settle.HANDLER) {
      try {
        (handler as ReplyHandler)(error, value, tag);
      } catch (e) {
        process.nextTick(() => {
          throw e; // the handler's own failure: uncaught, as from an event listener, not a driver state
        });
      }
    } else if (error !== null) (reject as (e: Error) => void)(error);
    else
      (resolve as (v: unknown) => void)(
        settle === Settle.RAW
          ? raw
          : settle === Settle.VALUE
            ? value
            : settle === Settle.BIT
              ? value & 1
              : undefined,
      );
  }

  private recycle(r: PendingRequest): void {
    r.layout = null;
    r.resolve = r.reject = null;
    r.handler = null;
    r.next = null;
    r.abandoned = false;
    this.pool.push(r);
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
