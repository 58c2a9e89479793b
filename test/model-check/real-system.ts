import {
  Direction,
  IrqStatus,
  IrqType,
  MessageType,
  Status,
  irqTypeName,
  isEdgeType,
  messageTypeName,
} from '../../src/protocol/constants.ts';
import { decodeRequest, type GpioRequest } from '../../src/protocol/messages.ts';
import type { GpioDevice } from '../../src/device/gpio-device.ts';
import type { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import type { SimulatedLines } from '../../src/device/simulated-lines.ts';
import type { GpioDriver } from '../../src/driver/gpio-driver.ts';
import type { VirtioDevice } from '../../src/virtio/virtio-device.ts';
import type { DescriptorChain } from '../../src/virtqueue/descriptor-chain.ts';
import type { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import type { DriverQueue, BufferLayout, UsedBuffer } from '../../src/virtqueue/driver-queue.ts';
import { settle } from './deferred-steps.ts';
import type { ExploredSystem, Violation } from './explorer.ts';
import { Invariant } from './invariants.ts';
import { ReferenceDevice, type HandBack } from './reference-device.ts';
import type { Subjects } from './subjects.ts';

export interface RealSystemOptions {
  lines: number;
  /** Interrupt types the consumer enables (change type moves between them). */
  types: readonly IrqType[];
  /** Consumer operations besides enable: change type, disable, set direction NONE. */
  ops: readonly Exclude<OpKind, 'enable'>[];
  /** Consumer GET_VALUE requests, concurrent with the line's interrupt operations. */
  values: boolean;
  /** Ring stop/start (a VM pause: GET_VRING_BASE, then the ring started again). */
  rings: boolean;
  /** Driver reset: the driver closes (rings dropped, device reset) and a new one probes. */
  reset: boolean;
  /**
   * 'fifo': the driver sees queue notifications in the order the device sent them (the
   * loopback's microtasks, one shared interrupt). 'any': in either order (vhost-user: one call
   * eventfd per queue, polled independently).
   */
  irqOrder: 'fifo' | 'any';
  /** Count the driver's own 'violation' diagnostics as invariant failures. */
  driverDiagnostics: boolean;
  /** A handler call for a VALID from a buffer queued under an earlier type is a failure. */
  staleCheck: boolean;
}

export const defaultRealOptions: RealSystemOptions = {
  lines: 2,
  types: [IrqType.EDGE_BOTH, IrqType.LEVEL_HIGH],
  ops: ['retype', 'disable', 'dir-none'],
  values: true,
  rings: true,
  reset: true,
  irqOrder: 'fifo',
  driverDiagnostics: true,
  staleCheck: true,
};

export type OpKind = 'enable' | 'retype' | 'disable' | 'dir-none';

interface ConsumerLine {
  /** The type the consumer last enabled successfully; NONE once it asked for a disable. */
  view: IrqType;
  op: { kind: OpKind; type: IrqType; sent: string[] } | null;
  getting: boolean;
  /** The running handler's finish (the ack), or null. */
  finish: (() => void) | null;
  /** An edge the line's type reports happened since the device last handed the buffer back VALID. */
  unreported: boolean;
  /** VALIDs the driver took while the consumer had the line enabled: each must call the handler once. */
  calls: number;
  /** Enables started (enable, change type): which configuration a buffer was queued under. */
  epoch: number;
  /** The epoch of the buffer out, when one is. */
  bufferEpoch: number;
  /** Calls owed for VALIDs from a buffer queued under an earlier configuration. */
  staleCalls: number;
}

interface Placed {
  req: GpioRequest;
  seq: number;
}

const QUEUE_REQ = 0;
const QUEUE_EVT = 1;
const typeShort = (t: IrqType): string =>
  (({ 1: 'rising', 2: 'falling', 3: 'both', 4: 'high', 8: 'low' }) as Record<number, string>)[t] ??
  irqTypeName(t);
const typeOfShort = (s: string): IrqType =>
  (({ rising: 1, falling: 2, both: 3, high: 4, low: 8 }) as Record<string, IrqType>)[s];

/**
 * The real GpioDevice, VirtioGpioDevice and GpioDriver over a LoopbackTransport, with every
 * deferred step owned by the explorer: the device serves a queue only when `serve requestq` /
 * `serve eventq` runs (the transport's kick is recorded, not delivered), and the driver sees
 * used buffers only when `irq requestq` / `irq eventq` runs. Everything else (promise
 * continuations, the driver's batched kick) runs to completion inside the step that caused it.
 *
 * Observation points, none of them in src/: the device's event sink and its two entry points
 * (handle, queueEventBuffer) are wrapped on the instance, and so are the driver's two
 * DriverQueues (add, collect). The ReferenceDevice is fed the same inputs and must agree.
 */
export class RealSystem implements ExploredSystem {
  private readonly sim: SimulatedLines;
  private readonly gpio: GpioDevice<DescriptorChain>;
  private readonly vdev: VirtioGpioDevice;
  private readonly wrapper: VirtioDevice;
  private driver!: GpioDriver;
  private gen = 0;
  private readonly ref: ReferenceDevice;
  private readonly consumer: ConsumerLine[];
  private violated: Violation[] = [];
  private lastLabel = '';
  // Deferred steps the explorer owns.
  private pendingKick = [false, false];
  /** Queues with a notification the driver has not taken, in the order they were sent. */
  private pendingIrq: number[] = [];
  private ringsRunning = true;
  private readonly queues: Array<{ queue: DeviceQueue; notify: () => void } | null> = [null, null];
  private stopped: Array<{ queue: DeviceQueue; notify: () => void } | null> = [null, null];
  // Ring contents by meaning (not by index or descriptor number, which only name them).
  private reqAvail: Placed[] = [];
  private reqUsed: Array<Placed & { status: number }> = [];
  private evAvail: number[] = [];
  private evUsed: HandBack[] = [];
  private evHeldBack: HandBack[] = [];
  private evOut: number[];
  private seq = 0;
  private readonly tokens = new WeakMap<object, Placed>();
  private readonly chainLine = new WeakMap<DescriptorChain, number>();
  /** Hand-backs seen since the current input began (compared with the oracle's). */
  private handBacks: HandBack[] = [];
  private handlerLog: string[] = [];
  private readonly handlers = new Map<number, () => void>();

  private constructor(
    private readonly sub: Subjects,
    private readonly opts: RealSystemOptions,
  ) {
    this.sim = new sub.SimulatedLines(opts.lines);
    this.gpio = new sub.GpioDevice<DescriptorChain>(this.sim);
    const setSink = this.gpio.setEventSink.bind(this.gpio);
    this.gpio.setEventSink = (sink) =>
      setSink(
        sink &&
          ((chain, status, line) => {
            const out: HandBack = [this.chainLine.get(chain) ?? line, status];
            this.handBacks.push(out);
            if (status === IrqStatus.VALID && this.consumer[out[0]]) this.consumer[out[0]].unreported = false;
            if (this.queues[QUEUE_EVT]) this.evUsed.push(out);
            else this.evHeldBack.push(out);
            sink(chain, status, line);
          }),
      );
    this.vdev = new sub.VirtioGpioDevice(this.gpio, { maxQueueSize: 16 });
    this.wrapHandle();
    this.wrapQueueEventBuffer();
    this.ref = new ReferenceDevice(opts.lines);
    this.consumer = Array.from({ length: opts.lines }, () => this.freshConsumer());
    this.evOut = Array.from({ length: opts.lines }, () => 0);
    const v = this.vdev;
    // A malformed ring is a bug here: the driver and device share one correct memory.
    v.onNeedsReset = (q, e) => this.fail(Invariant.protocol, `queue ${q} marked broken: ${e.message}`);
    this.wrapper = {
      deviceId: v.deviceId,
      numQueues: v.numQueues,
      maxQueueSize: v.maxQueueSize,
      offeredFeatures: v.offeredFeatures,
      readConfig: (o, s) => v.readConfig(o, s),
      setFeatures: (f) => v.setFeatures(f),
      startQueue: (i, queue) => {
        const gen = this.gen;
        const notify = () => {
          if (gen === this.gen && !this.pendingIrq.includes(i)) this.pendingIrq.push(i);
        };
        this.queues[i] = { queue, notify };
        v.startQueue(i, queue, notify);
      },
      stopQueue: (i, drop) => {
        this.queues[i] = null;
        v.stopQueue(i, drop);
      },
      // Recorded, not delivered: `serve requestq` / `serve eventq` deliver it.
      kick: (i) => {
        this.pendingKick[i] = true;
      },
      reset: () => v.reset(),
      // The transport installs its own (empty) handler here; the device keeps ours.
      onNeedsReset: null,
    };
  }

  static async create(sub: Subjects, opts: RealSystemOptions = defaultRealOptions): Promise<RealSystem> {
    const s = new RealSystem(sub, opts);
    await s.openDriver();
    return s;
  }

  private freshConsumer(): ConsumerLine {
    return {
      view: IrqType.NONE,
      op: null,
      getting: false,
      finish: null,
      unreported: false,
      calls: 0,
      epoch: 0,
      bufferEpoch: 0,
      staleCalls: 0,
    };
  }

  private async openDriver(): Promise<void> {
    const transport = new this.sub.LoopbackTransport(this.wrapper, { memoryBytes: 1 << 12 });
    // The driver's notification handlers, taken when it registers them: `irq requestq|eventq` calls them.
    const register = transport.onInterrupt.bind(transport);
    const handlers = this.handlers;
    handlers.clear();
    transport.onInterrupt = (q, h) => {
      handlers.set(q, h);
      register(q, h);
    };
    const opened = this.sub.GpioDriver.open(transport, { queueSize: 8, eventIdx: false, indirect: false });
    await settle();
    this.driver = await opened;
    this.driver.on('violation', (m) => {
      if (!this.opts.driverDiagnostics) return;
      this.fail(
        /VALID interrupt while disabled/.test(m) ? Invariant.noValidWhenDisabled : Invariant.protocol,
        `driver: ${m}`,
      );
    });
    this.wrapDriverQueues();
    this.checkInternals();
  }

  /** The key reads a few private fields; say so plainly if a refactor renamed them. */
  private checkInternals(): void {
    const lines = (this.driver as unknown as { irqLines?: Array<Record<string, unknown>> }).irqLines;
    const fields = ['type', 'enabled', 'inFlight', 'enableGen', 'queuedGen', 'handling'];
    const ok =
      Array.isArray(lines) &&
      lines.length === this.opts.lines &&
      fields.every((f) => f in lines[0]) &&
      typeof (this.gpio as unknown as { eventsSuspended?: unknown }).eventsSuspended === 'boolean';
    if (!ok)
      throw new Error(
        'GpioDriver.irqLines or GpioDevice.eventsSuspended changed shape: update the key in test/model-check/real-system.ts',
      );
  }

  // --- observation ---

  private fail(invariant: string, detail: string): void {
    this.violated.push({ invariant, detail });
  }

  private wrapHandle(): void {
    const handle = this.gpio.handle.bind(this.gpio);
    this.gpio.handle = (req) => {
      const placed = this.reqAvail.shift();
      if (
        !placed ||
        placed.req.type !== req.type ||
        placed.req.gpio !== req.gpio ||
        placed.req.value !== req.value
      )
        this.fail(
          Invariant.protocol,
          `device served ${messageTypeName(req.type)} L${req.gpio}, not the next request placed`,
        );
      const want = this.ref.request(req);
      if (this.ref.line(req.gpio)?.type === IrqType.NONE && this.consumer[req.gpio])
        this.consumer[req.gpio].unreported = false; // the device dropped its latch: nothing is owed
      let r!: ReturnType<typeof handle>;
      this.observe(`${messageTypeName(req.type)} L${req.gpio}`, want.handBacks, () => (r = handle(req)));
      if (
        r.status !== want.status ||
        (want.value !== null && r.status === Status.OK && r.value !== want.value)
      )
        this.fail(
          Invariant.protocol,
          `${messageTypeName(req.type)} L${req.gpio} value ${req.value}: reply ${r.status}/${r.value}, the rules say ${want.status}/${want.value}`,
        );
      if (placed) this.reqUsed.push({ ...placed, status: r.status });
      return r;
    };
  }

  private wrapQueueEventBuffer(): void {
    const queueEventBuffer = this.gpio.queueEventBuffer.bind(this.gpio);
    this.gpio.queueEventBuffer = (line, token) => {
      const placed = this.evAvail.shift();
      if (line === null || placed !== line)
        this.fail(
          Invariant.protocol,
          `device took an eventq buffer for ${line}, the driver placed one for ${placed}`,
        );
      if (line !== null) this.chainLine.set(token, line);
      const want = line === null ? [] : this.ref.buffer(line);
      this.observe(`eventq buffer L${line}`, want, () => queueEventBuffer(line, token));
    };
  }

  private wrapDriverQueues(): void {
    const d = this.driver as unknown as {
      requestq?: DriverQueue<object>;
      eventq?: DriverQueue<number> | null;
    };
    if (!d.requestq || d.eventq === undefined)
      throw new Error(
        'GpioDriver has no requestq/eventq fields any more: update test/model-check/real-system.ts',
      );
    const rq = d.requestq;
    const rqAdd = rq.add.bind(rq);
    const rqCollect = rq.collect.bind(rq);
    const onPlaced = (request: Uint8Array, token: object): void => {
      const req = decodeRequest(request);
      if (
        this.reqAvail.some((p) => p.req.gpio === req.gpio) ||
        this.reqUsed.some((p) => p.req.gpio === req.gpio)
      )
        this.fail(
          Invariant.repliesInOrder,
          `a second request for L${req.gpio} in flight (${messageTypeName(req.type)})`,
        );
      const placed = { req, seq: this.seq++ };
      this.tokens.set(token, placed);
      this.reqAvail.push(placed);
      const c = this.consumer[req.gpio];
      if (c?.op && req.type !== MessageType.GET_VALUE) c.op.sent.push(`${req.type}:${req.value}`);
    };
    rq.add = (b: BufferLayout, token: object) => {
      rqAdd(b, token);
      onPlaced(b.readable[0], token);
    };
    // The driver places its standard request (8 bytes, 2-byte response) with addPair.
    const rqAddPair = rq.addPair.bind(rq);
    rq.addPair = (request: Uint8Array, writable: number, token: object) => {
      rqAddPair(request, writable, token);
      onPlaced(request, token);
    };
    const inOrder = (token: object): void => {
      const p = this.tokens.get(token);
      const head = this.reqUsed.shift();
      if (!p || !head || p.seq !== head.seq)
        this.fail(Invariant.repliesInOrder, `reply collected out of the order it was served`);
    };
    rq.collect = () => {
      const used = rqCollect();
      for (const u of used) inOrder(u.token);
      return used;
    };
    // The driver collects its requestq with collectEach (nothing built per reply).
    const rqCollectEach = rq.collectEach.bind(rq);
    rq.collectEach = (visit) =>
      rqCollectEach((token, len, data) => {
        inOrder(token);
        visit(token, len, data);
      });
    const eq = d.eventq;
    if (!eq) return;
    const eqAdd = eq.add.bind(eq);
    const eqCollect = eq.collect.bind(eq);
    eq.add = (b: BufferLayout, line: number) => {
      eqAdd(b, line);
      this.evAvail.push(line);
      if (this.consumer[line]) this.consumer[line].bufferEpoch = this.consumer[line].epoch;
      if (++this.evOut[line] > 1)
        this.fail(Invariant.oneBuffer, `L${line} has ${this.evOut[line]} eventq buffers in flight`);
    };
    eq.collect = (): UsedBuffer<number>[] => {
      const used = eqCollect();
      for (const u of used) {
        const head = this.evUsed.shift();
        const status = u.len >= 1 ? (u.data[0] as IrqStatus) : -1;
        if (!head || head[0] !== u.token || head[1] !== status)
          this.fail(
            Invariant.protocol,
            `eventq returned L${u.token} status ${status}, the device handed back ${head}`,
          );
        this.evOut[u.token]--;
        const c = this.consumer[u.token];
        if (status === IrqStatus.VALID && c && !c.op && c.view !== IrqType.NONE) {
          // A VALID from a buffer queued before the type changed must be dropped (staleCheck).
          if (c.bufferEpoch === c.epoch) c.calls++;
          else if (!this.opts.staleCheck) {
            c.calls++;
            c.staleCalls++;
          }
        }
      }
      return used;
    };
  }

  /** Runs one input to the device; the buffers it hands back meanwhile must be the oracle's. */
  private observe(cause: string, want: readonly HandBack[], run: () => void): void {
    const outer = this.handBacks;
    this.handBacks = [];
    try {
      run();
    } finally {
      const got = this.handBacks;
      this.handBacks = outer;
      this.compareHandBacks(got, want, cause);
    }
  }

  private compareHandBacks(got: readonly HandBack[], want: readonly HandBack[], cause: string): void {
    const fmt = (h: readonly HandBack[]) =>
      h.map(([l, s]) => `L${l} ${s === IrqStatus.VALID ? 'VALID' : 'INVALID'}`).join(', ') || 'nothing';
    if (got.length === want.length && got.every((h, i) => h[0] === want[i][0] && h[1] === want[i][1])) return;
    const extraValid = got.find(
      (h) => h[1] === IrqStatus.VALID && !want.some((w) => w[0] === h[0] && w[1] === IrqStatus.VALID),
    );
    const missingValid = want.find(
      (w) => w[1] === IrqStatus.VALID && !got.some((h) => h[0] === w[0] && h[1] === IrqStatus.VALID),
    );
    const line = (extraValid ?? missingValid)?.[0];
    let inv: string = Invariant.protocol;
    if (line !== undefined) {
      const t = this.ref.line(line).type;
      if (extraValid && t === IrqType.NONE) inv = Invariant.noValidWhenDisabled;
      else if (isEdgeType(t)) inv = Invariant.edgeOnce;
      else if (t !== IrqType.NONE) inv = Invariant.levelRefires;
      else if (missingValid) inv = Invariant.edgeOnce;
    } else if (
      got.filter((h) => h[1] === IrqStatus.INVALID).length !==
      want.filter((w) => w[1] === IrqStatus.INVALID).length
    ) {
      inv = Invariant.oneBuffer;
    }
    this.fail(inv, `${cause}: the device handed back ${fmt(got)}, the rules say ${fmt(want)}`);
  }

  private handlerFor(gen: number, line: number) {
    return (): Promise<void> => {
      if (gen !== this.gen) return Promise.resolve();
      const c = this.consumer[line];
      this.handlerLog.push(`handler L${line} start`);
      if (c.finish) this.fail(Invariant.handlerExclusive, `RE-ENTERED: L${line}'s handler is running`);
      else if (c.op || c.view === IrqType.NONE)
        this.fail(Invariant.handlerExclusive, `L${line} is masked (${c.op ? c.op.kind : 'disabled'})`);
      else if (c.calls === 0)
        this.fail(
          Invariant.eventsMatchEdges,
          `L${line}'s ${typeShort(c.view)} handler called without a VALID interrupt of its own (none, or one from a buffer queued before the type changed)`,
        );
      c.calls = Math.max(0, c.calls - 1);
      c.staleCalls = Math.max(0, c.staleCalls - 1);
      return new Promise<void>((resolve) => {
        c.finish = resolve;
      });
    };
  }

  // --- the explorer's view ---

  enabled(): string[] {
    const out: string[] = [];
    const running = this.ringsRunning;
    if (running && this.pendingKick[QUEUE_REQ]) out.push('serve requestq');
    if (running && this.pendingKick[QUEUE_EVT]) out.push('serve eventq');
    const deliverable = this.opts.irqOrder === 'fifo' ? this.pendingIrq.slice(0, 1) : this.pendingIrq;
    for (const q of [QUEUE_REQ, QUEUE_EVT])
      if (deliverable.includes(q)) out.push(q === QUEUE_REQ ? 'irq requestq' : 'irq eventq');
    this.consumer.forEach((c, l) => {
      if (c.finish) out.push(`handler L${l} finish`);
      if (!c.op) {
        if (c.view === IrqType.NONE)
          for (const t of this.opts.types) out.push(`enable L${l} ${typeShort(t)}`);
        else {
          if (this.opts.ops.includes('retype'))
            for (const t of this.opts.types) if (t !== c.view) out.push(`retype L${l} ${typeShort(t)}`);
          if (this.opts.ops.includes('disable')) out.push(`disable L${l}`);
          if (this.opts.ops.includes('dir-none')) out.push(`dir-none L${l}`);
        }
      }
      if (this.opts.values && !c.getting) out.push(`get L${l}`);
    });
    for (let l = 0; l < this.opts.lines; l++) out.push(`host L${l} ${this.sim.input(l) === 0 ? 1 : 0}`);
    if (this.opts.rings) out.push(running ? 'stop rings' : 'start rings');
    if (this.opts.reset) out.push('reset driver');
    return out;
  }

  async apply(action: string): Promise<void> {
    this.violated = [];
    this.handlerLog = [];
    this.lastLabel = action;
    const [verb, a1, a2] = action.split(' ');
    const line = a1?.startsWith('L') ? Number(a1.slice(1)) : -1;
    switch (verb) {
      case 'serve': {
        const q = a1 === 'requestq' ? QUEUE_REQ : QUEUE_EVT;
        this.pendingKick[q] = false;
        this.vdev.kick(q);
        break;
      }
      case 'irq': {
        const q = a1 === 'requestq' ? QUEUE_REQ : QUEUE_EVT;
        this.pendingIrq = this.pendingIrq.filter((p) => p !== q);
        this.handlers.get(q)?.();
        break;
      }
      case 'handler': {
        const c = this.consumer[line];
        const f = c.finish;
        c.finish = null;
        f?.();
        break;
      }
      case 'enable':
      case 'retype':
      case 'disable':
      case 'dir-none':
        this.startOp(line, verb, a2 ? typeOfShort(a2) : IrqType.NONE);
        break;
      case 'get': {
        const c = this.consumer[line];
        const gen = this.gen;
        c.getting = true;
        this.driver.getValue(line).then(
          () => {
            if (gen === this.gen) c.getting = false;
          },
          (e: Error) => {
            if (gen === this.gen) this.fail(Invariant.protocol, `get L${line} failed: ${e.message}`);
          },
        );
        break;
      }
      case 'host': {
        const level = Number(a2) as 0 | 1;
        const c = this.consumer[line];
        if (this.ref.isReportedEdge(line, level)) c.unreported = true;
        const want = this.ref.input(line, level);
        this.observe(`host L${line} → ${level}`, want, () => this.sim.setInput(line, level));
        break;
      }
      case 'stop':
        this.ringsRunning = false;
        this.stopped = [...this.queues];
        this.ref.suspend();
        this.wrapper.stopQueue(QUEUE_REQ, false);
        this.wrapper.stopQueue(QUEUE_EVT, false);
        break;
      case 'start':
        this.startRings();
        break;
      case 'reset':
        await this.resetDriver();
        break;
      default:
        throw new Error(`unknown action ${action}`);
    }
    await settle();
    if (this.handlerLog.length > 0) this.lastLabel += ' → ' + this.handlerLog.join(' → ');
    this.consumer.forEach((c, l) => {
      if (c.calls > 0)
        this.fail(Invariant.eventsMatchEdges, `a VALID interrupt for L${l} never reached its handler`);
    });
    this.checkQuiescent();
  }

  /**
   * The rings start again in the order a front-end sends them (requestq, then eventq): the
   * device re-serves the requestq, hands back what it held while stopped, delivers what became
   * pending, then takes newly queued eventq buffers.
   */
  private startRings(): void {
    this.ringsRunning = true;
    const [req, evt] = this.stopped;
    if (req) {
      this.queues[QUEUE_REQ] = req;
      this.vdev.startQueue(QUEUE_REQ, req.queue, req.notify);
    }
    this.evUsed.push(...this.evHeldBack);
    this.evHeldBack = [];
    const want = this.ref.resume();
    if (evt) {
      this.queues[QUEUE_EVT] = evt;
      this.observe('eventq started', want, () => this.vdev.startQueue(QUEUE_EVT, evt.queue, evt.notify));
    }
  }

  private startOp(line: number, kind: OpKind, type: IrqType): void {
    const c = this.consumer[line];
    const gen = this.gen;
    c.op = { kind, type, sent: [] };
    if (kind === 'enable' || kind === 'retype') c.epoch++;
    const run =
      kind === 'disable'
        ? this.driver.disableIrq(line)
        : kind === 'dir-none'
          ? this.driver.setDirection(line, Direction.NONE)
          : this.driver.enableIrq(line, type, this.handlerFor(gen, line));
    run.then(
      () => {
        if (gen !== this.gen) return;
        c.op = null;
        c.view = kind === 'enable' || kind === 'retype' ? type : IrqType.NONE;
        if (c.view === IrqType.NONE) c.unreported = false;
      },
      (e: Error) => {
        if (gen === this.gen) this.fail(Invariant.protocol, `${kind} L${line} failed: ${e.message}`);
      },
    );
  }

  private async resetDriver(): Promise<void> {
    this.gen++;
    this.ref.reset();
    await this.driver.close();
    this.pendingKick = [false, false];
    this.pendingIrq = [];
    this.ringsRunning = true;
    this.reqAvail = [];
    this.reqUsed = [];
    this.evAvail = [];
    this.evUsed = [];
    this.evHeldBack = [];
    this.evOut.fill(0);
    this.consumer.forEach((_, i) => (this.consumer[i] = this.freshConsumer()));
    await this.openDriver();
  }

  /**
   * Nothing left in flight (no kick, interrupt, request or consumer operation pending, rings
   * running): every reported edge on an edge-enabled line has reached its handler, unless
   * the handler is running (then the re-queue after it will report it).
   */
  private checkQuiescent(): void {
    if (!this.ringsRunning || this.pendingKick.some(Boolean) || this.pendingIrq.length > 0) return;
    if (this.reqAvail.length > 0 || this.reqUsed.length > 0) return;
    this.consumer.forEach((c, l) => {
      if (c.op || c.finish || !isEdgeType(c.view)) return;
      if (c.unreported) this.fail(Invariant.eventsMatchEdges, `an edge on L${l} never reached its handler`);
    });
  }

  violations(): Violation[] {
    return this.violated;
  }

  label(): string {
    return this.lastLabel;
  }

  /**
   * Lines are interchangeable unless rings stop and start (resumeEvents delivers in line
   * order), so then the key is the least encoding over every renaming of the lines: a state
   * and its mirror image are one state.
   */
  key(): string {
    const d = this.driver as unknown as {
      irqLines: Array<{
        type: number;
        enabled: boolean;
        inFlight: boolean;
        enableGen: number;
        queuedGen: number;
        handling: boolean;
      }>;
    };
    const g = this.gpio as unknown as { eventsSuspended: boolean };
    const snap = this.gpio.snapshot();
    const refLines = this.ref.lineKeys();
    const perLine = snap.map((sn, l) => {
      const s = d.irqLines[l];
      const c = this.consumer[l];
      return [
        `${sn.direction}${sn.irqType}${+sn.armed}${+sn.latched}${sn.value}`,
        `${s.type}${+s.enabled}${+s.inFlight}${+(s.enableGen === s.queuedGen)}${+s.handling}`,
        `${c.view}${c.op ? c.op.kind + c.op.type + c.op.sent.join('/') : '-'}${+c.getting}${+!!c.finish}${+c.unreported}${c.calls}${c.staleCalls}${+(c.bufferEpoch === c.epoch)}`,
        refLines[l],
        this.evOut[l],
      ].join(':');
    });
    const shared = [
      +g.eventsSuspended,
      +this.ref.isSuspended,
      this.pendingKick.map(Number).join(''),
      this.pendingIrq.join(''),
      +this.ringsRunning,
    ].join('');
    const encode = (rename: readonly number[]): string => {
      const order = rename.map((_, j) => rename.indexOf(j));
      const req = (p: Placed) => `${p.req.type}:${rename[p.req.gpio]}:${p.req.value}`;
      return [
        order.map((l) => perLine[l]).join(','),
        shared,
        this.reqAvail.map(req).join(';'),
        this.reqUsed.map((p) => req(p) + '=' + p.status).join(';'),
        this.evAvail.map((l) => rename[l]).join(';'),
        this.evUsed.map(([l, st]) => `${rename[l]}=${st}`).join(';'),
        this.evHeldBack.map(([l, st]) => `${rename[l]}=${st}`).join(';'),
      ].join('|');
    };
    const identity = perLine.map((_, i) => i);
    if (this.opts.rings) return encode(identity);
    let best: string | null = null;
    for (const rename of permutations(identity)) {
      const k = encode(rename);
      if (best === null || k < best) best = k;
    }
    return best as string;
  }
}

function permutations(xs: readonly number[]): number[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}
