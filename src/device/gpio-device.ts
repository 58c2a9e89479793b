import { EventEmitter } from 'node:events';
import { encodeConfig } from '../protocol/config.ts';
import {
  Direction,
  IrqStatus,
  IrqType,
  MessageType,
  Status,
  isDirection,
  isEdgeType,
  isIrqType,
  isLevelType,
} from '../protocol/constants.ts';
import type { GpioRequest } from '../protocol/messages.ts';
import { encodeNames } from '../protocol/names.ts';
import { LineFault, type Level, type LevelChange, type LineBackend } from './line-backend.ts';
import { LineState, type LineCounters } from './line-state.ts';
import { DeviceEventStream, directionNameOf, edgeNameOf } from './device-events.ts';

/** Where the device hands eventq buffers back: writing the status is the interrupt (or the return). */
export type EventSink<Token> = (token: Token, status: IrqStatus, line: number) => void;

export interface GpioReply {
  status: Status;
  /** The response value byte, or the names block for GET_LINE_NAMES. */
  value: number;
  names?: Uint8Array;
}

export interface LineSnapshot {
  line: number;
  name: string;
  direction: Direction;
  /** Sensed level (the driven level for outputs). */
  value: Level;
  irqType: IrqType;
  armed: boolean;
  latched: boolean;
  counters: LineCounters;
}

export interface GpioDeviceEvents {
  /** Something about a line changed (for watchers: status, dashboards, traces). */
  line: [line: number];
  /** An eventq buffer was handed back. */
  irq: [line: number, status: IrqStatus];
}

export interface GpioDeviceOptions {
  /** Line names; defaults to the backend's. Must be unique when non-empty. */
  names?: readonly string[];
  log?: (level: 'debug' | 'info' | 'warn', msg: string) => void;
}

/**
 * The virtio-gpio device model (virtio 1.2 §5.18): per-line direction, value and interrupt
 * state, the six requestq messages, and the eventq rules. It knows nothing of rings or
 * transports: requests come in decoded, eventq buffers are opaque tokens handed back through
 * the sink.
 */
export class GpioDevice<Token = unknown> extends EventEmitter<GpioDeviceEvents> {
  readonly ngpio: number;
  readonly names: readonly string[];
  readonly namesBlock: Uint8Array;
  /** The device's typed event stream (device-events.ts); events are built only while it has listeners. */
  readonly events: DeviceEventStream;
  private readonly lines: LineState<Token>[];
  private irqSupported = false;
  private eventsSuspended = false;
  private sink: EventSink<Token> | null = null;
  /** A direction being applied: levels the backend reports meanwhile belong to it (device-events.ts). */
  private changing: { gpio: number; dir: Direction; announced: boolean } | null = null;
  private readonly log: NonNullable<GpioDeviceOptions['log']>;
  private readonly reply: GpioReply = { status: Status.OK, value: 0 };

  constructor(
    readonly backend: LineBackend,
    opts: GpioDeviceOptions = {},
  ) {
    super();
    this.ngpio = backend.ngpio;
    this.names = Array.from({ length: this.ngpio }, (_, i) => opts.names?.[i] ?? backend.names[i] ?? '');
    this.namesBlock = encodeNames(this.names);
    this.events = new DeviceEventStream(this.names);
    this.log = opts.log ?? (() => {});
    this.lines = Array.from({ length: this.ngpio }, (_, i) => {
      const s = new LineState<Token>();
      s.level = backend.sense(i);
      return s;
    });
    backend.onChange((c) => this.levelChanged(c));
  }

  config(): Uint8Array {
    return encodeConfig({ ngpio: this.ngpio, namesSize: this.namesBlock.length });
  }

  /** Whether VIRTIO_GPIO_F_IRQ was negotiated. */
  setIrqSupported(on: boolean): void {
    this.irqSupported = on;
  }

  setEventSink(sink: EventSink<Token> | null): void {
    this.sink = sink;
  }

  /** Response size for a request type: 1 + names size for GET_LINE_NAMES, else 2. */
  responseSize(type: number): number {
    return type === MessageType.GET_LINE_NAMES ? 1 + this.namesBlock.length : 2;
  }

  /**
   * Handles one requestq message. The reply (but for GET_LINE_NAMES) is one object the device
   * reuses: read it before the next call. Nothing is allocated per request.
   */
  handle(req: GpioRequest): GpioReply {
    const packed = this.serve(req.type, req.gpio, req.value);
    const status = (packed & 0xff) as Status;
    if (req.type === MessageType.GET_LINE_NAMES && status === Status.OK)
      return { status, value: 0, names: this.namesBlock };
    this.reply.status = status;
    this.reply.value = packed >>> 8;
    return this.reply;
  }

  /** The reply packed as `status | value << 8`. */
  private serve(type: number, gpio: number, value: number): number {
    const ERR = Status.ERR;
    if (type === MessageType.GET_LINE_NAMES) return this.namesBlock.length === 0 ? ERR : Status.OK;
    const line = gpio < this.lines.length ? this.lines[gpio] : undefined;
    if (!line) return ERR;
    try {
      switch (type) {
        case MessageType.GET_DIRECTION:
          return Status.OK | (line.direction << 8);
        case MessageType.SET_DIRECTION:
          if (!isDirection(value)) return ERR;
          return this.setDirection(gpio, line, value) ? Status.OK : ERR;
        case MessageType.GET_VALUE:
          return Status.OK | (this.backend.sense(gpio) << 8);
        case MessageType.SET_VALUE:
          if (value !== 0 && value !== 1) return ERR;
          line.value = value;
          if (line.direction === Direction.OUT) this.backend.drive(gpio, value);
          this.emit('line', gpio);
          return Status.OK;
        case MessageType.SET_IRQ_TYPE:
          if (!isIrqType(value)) return ERR;
          return this.setIrqType(gpio, line, value) ? Status.OK : ERR;
        default:
          return ERR;
      }
    } catch (e) {
      // The backend could not do it (a host line busy, a host chip gone) and logged why.
      if (e instanceof LineFault) return ERR;
      throw e;
    }
  }

  /**
   * An eventq buffer for `gpio` arrived (null: the buffer was malformed). It is handed back at
   * once (INVALID, or VALID for a pending edge or an active level) or kept: the line is unmasked.
   */
  queueEventBuffer(gpio: number | null, token: Token): void {
    const line = gpio === null ? undefined : this.lines[gpio];
    if (gpio === null || !line) {
      this.log('warn', `eventq buffer for invalid line ${gpio}: returned INVALID`);
      return this.handBack(token, IrqStatus.INVALID, gpio ?? 0xffff);
    }
    if (!line.enabled || !this.irqSupported) return this.handBackLine(gpio, line, token, IrqStatus.INVALID);
    if (line.armed !== null) {
      this.log('warn', `line ${gpio}: second eventq buffer while one is held: returned INVALID`);
      return this.handBackLine(gpio, line, token, IrqStatus.INVALID);
    }
    line.armed = token;
    if (this.events.active) this.events.line(gpio, { type: 'armed' });
    this.emit('line', gpio);
    if (!this.eventsSuspended) this.checkPending(gpio, line);
  }

  /** Rings suspended: hold buffers, keep latching edges, deliver nothing (protocol.md D16). */
  suspendEvents(): void {
    this.eventsSuspended = true;
  }

  /** Rings running again: deliver what became pending while suspended. */
  resumeEvents(): void {
    this.eventsSuspended = false;
    this.lines.forEach((line, i) => this.checkPending(i, line));
  }

  /** Forget every held eventq buffer without handing it back (ring reset or memory change). */
  dropEventBuffers(): void {
    this.lines.forEach((line, i) => {
      if (line.armed !== null) {
        line.armed = null;
        if (this.events.active) this.events.line(i, { type: 'dropped' });
        this.emit('line', i);
      }
    });
  }

  /**
   * A driver went away (disconnect, device reset): interrupts off, latches and held buffers
   * dropped. Directions, values and the levels applied to inputs stay.
   */
  resetDriverState(): void {
    this.dropEventBuffers();
    this.lines.forEach((line, i) => {
      if (line.irqType !== IrqType.NONE) {
        this.backend.watch(i, IrqType.NONE);
        if (this.events.active) this.events.line(i, { type: 'irq-type', edge: 'none' });
      }
      line.irqType = IrqType.NONE;
      line.latched = false;
    });
    this.eventsSuspended = false;
  }

  snapshot(): LineSnapshot[] {
    return this.lines.map((l, i) => ({
      line: i,
      name: this.names[i],
      direction: l.direction,
      value: this.sensed(i) ?? l.level,
      irqType: l.irqType,
      armed: l.armed !== null,
      latched: l.latched,
      counters: { ...l.counters },
    }));
  }

  private setDirection(gpio: number, line: LineState<Token>, dir: Direction): boolean {
    if (dir === Direction.OUT && line.enabled) return false; // the line is in use as an interrupt (docs/protocol.md §9)
    if (dir === Direction.NONE) {
      this.disableIrq(gpio, line);
      line.value = 0;
    }
    this.applyDirection(gpio, dir, line.value); // a LineFault leaves the line as it was
    line.direction = dir;
    line.level = this.sensed(gpio) ?? line.level;
    this.emit('line', gpio);
    return true;
  }

  private setIrqType(gpio: number, line: LineState<Token>, type: IrqType): boolean {
    if (!this.irqSupported) return false;
    if (type === IrqType.NONE) {
      this.disableIrq(gpio, line);
      this.emit('line', gpio);
      return true;
    }
    if (line.direction === Direction.OUT) return false;
    if (line.irqType === type) return true; // same type again: a no-op (docs/protocol.md §9)
    if (line.enabled) return false; // the driver must disable before changing the type (protocol.md R11)
    if (line.direction === Direction.NONE) {
      // An interrupt on an unconfigured line: treat it as an input (docs/protocol.md §9).
      this.applyDirection(gpio, Direction.IN, line.value);
      line.direction = Direction.IN;
    }
    this.backend.watch(gpio, type); // a LineFault leaves the type unset
    line.irqType = type;
    if (this.events.active) this.events.line(gpio, { type: 'irq-type', edge: edgeNameOf(type) });
    line.latched = false;
    line.level = this.sensed(gpio) ?? line.level;
    this.emit('line', gpio);
    return true;
  }

  /** Type NONE: drop the latch, hand the held buffer back INVALID before the reply completes (protocol.md D14, §5). */
  private disableIrq(gpio: number, line: LineState<Token>): void {
    const wasEnabled = line.enabled;
    if (wasEnabled) this.backend.watch(gpio, IrqType.NONE);
    line.irqType = IrqType.NONE;
    line.latched = false;
    if (wasEnabled && this.events.active) this.events.line(gpio, { type: 'irq-type', edge: 'none' });
    const held = line.armed;
    if (held !== null) {
      line.armed = null;
      this.handBackLine(gpio, line, held, IrqStatus.INVALID, true);
    }
  }

  private levelChanged(c: LevelChange): void {
    const line = this.lines[c.line];
    if (!line) return;
    if (this.events.active) {
      const ch = this.changing?.gpio === c.line ? this.changing : null;
      if (ch && !ch.announced) {
        ch.announced = true;
        this.events.line(c.line, { type: 'direction', direction: directionNameOf(ch.dir) });
      }
      const dir = ch ? ch.dir : line.direction;
      this.events.line(c.line, {
        type: dir === Direction.OUT ? 'output' : 'input',
        from: line.level,
        to: c.level,
      });
    }
    const edge = line.edgeMatches(c.level);
    line.level = c.level;
    if (edge) {
      line.counters.edges++;
      if (line.armed !== null && !this.eventsSuspended) {
        this.deliver(c.line, line);
      } else {
        if (line.latched) line.counters.coalesced++;
        else line.counters.latched++;
        if (this.events.active) this.events.line(c.line, { type: line.latched ? 'coalesced' : 'latched' });
        line.latched = true;
      }
    } else if (line.levelActive(c.level) && line.armed !== null && !this.eventsSuspended) {
      this.deliver(c.line, line);
    }
    this.emit('line', c.line);
  }

  /** A buffer is held: a latched edge or an active level fires now. */
  private checkPending(gpio: number, line: LineState<Token>): void {
    if (line.armed === null) return;
    if (isEdgeType(line.irqType) && line.latched) {
      line.latched = false;
      this.deliver(gpio, line);
    } else if (isLevelType(line.irqType)) {
      const level = this.sensed(gpio);
      if (level !== null && line.levelActive(level)) this.deliver(gpio, line);
    }
  }

  /** backend.setDirection, announced once: before the level change it causes, or after it succeeded. */
  private applyDirection(gpio: number, dir: Direction, value: Level): void {
    const change = { gpio, dir, announced: false };
    this.changing = change;
    try {
      this.backend.setDirection(gpio, dir, value);
    } finally {
      this.changing = null;
    }
    if (!change.announced && this.events.active)
      this.events.line(gpio, { type: 'direction', direction: directionNameOf(dir) });
  }

  /** The level the backend senses, or null when it cannot (a LineFault, which the backend logged). */
  private sensed(gpio: number): Level | null {
    try {
      return this.backend.sense(gpio);
    } catch (e) {
      if (e instanceof LineFault) return null;
      throw e;
    }
  }

  private deliver(gpio: number, line: LineState<Token>): void {
    const token = line.armed as Token;
    line.armed = null;
    line.counters.delivered++;
    this.handBack(token, IrqStatus.VALID, gpio);
    if (this.events.active) this.events.line(gpio, { type: 'delivered' });
  }

  private handBackLine(
    gpio: number,
    line: LineState<Token>,
    token: Token,
    status: IrqStatus,
    held = false,
  ): void {
    if (status === IrqStatus.INVALID) line.counters.invalid++;
    this.handBack(token, status, gpio);
    if (status === IrqStatus.INVALID && this.events.active) this.events.line(gpio, { type: 'invalid', held });
  }

  private handBack(token: Token, status: IrqStatus, line: number): void {
    if (!this.sink) throw new Error('GpioDevice has no event sink');
    this.sink(token, status, line);
    this.emit('irq', line, status);
  }
}
