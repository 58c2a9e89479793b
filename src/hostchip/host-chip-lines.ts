import { Direction, IrqType } from '../protocol/constants.ts';
import { LineFault, type Level, type LevelChange, type LineBackend } from '../device/line-backend.ts';
import { errnoCode, type ChipIo, type FdWatch } from './chip-io.ts';
import {
  GPIO_GET_CHIPINFO_IOCTL,
  GPIO_V2_GET_LINEINFO_IOCTL,
  GPIO_V2_GET_LINE_IOCTL,
  GPIO_V2_LINE_GET_VALUES_IOCTL,
  GPIO_V2_LINE_SET_CONFIG_IOCTL,
  GPIO_V2_LINE_SET_VALUES_IOCTL,
  CHIPINFO_SIZE,
  LINE_EVENT_SIZE,
  LineEventId,
  LineFlag,
  checkIoctlEncoding,
  decodeChipInfo,
  decodeLineEvents,
  decodeLineInfo,
  encodeLineConfig,
  encodeLineInfoQuery,
  encodeLineRequest,
  encodeLineValues,
  lineValueOf,
  requestFdOf,
  type ChipInfo,
  type LineConfig,
} from './gpio-uapi.ts';

export type HostChipLogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HostChipOptions {
  /** The chip device, e.g. /dev/gpiochip0. */
  path: string;
  /** Chip offsets served, in the order the guest sees them (guest line i = lines[i]); default all. */
  lines?: readonly number[];
  /** Consumer label the kernel shows for requested lines (default 'vgpio'). */
  consumer?: string;
  io: ChipIo;
  log?: (level: HostChipLogLevel, msg: string, fields?: Record<string, string | number>) => void;
  /** CPU architecture to check the ioctl encoding for (default process.arch). */
  arch?: string;
}

/** 'open' while the chip answers; 'gone' once it reported ENODEV/EIO (unplugged, driver unbound). */
export type HostChipState = 'open' | 'gone';

interface HostLine {
  readonly offset: number;
  /** The line request fd while the guest uses the line, else null. */
  fd: number | null;
  watch: FdWatch | null;
  direction: Direction;
  irqType: IrqType;
  /** The level last reported through onChange, for keeping reported edges alternating. */
  reported: Level;
}

/** Events read per read(2): the kernel's default per-line buffer is 16 events. */
const EVENTS_PER_READ = 16;

/** Which kernel edge detection serves an IRQ type; level types are emulated over both edges. */
function edgeFlags(type: IrqType): bigint {
  switch (type) {
    case IrqType.NONE:
      return 0n;
    case IrqType.EDGE_RISING:
      return LineFlag.EDGE_RISING;
    case IrqType.EDGE_FALLING:
      return LineFlag.EDGE_FALLING;
    default:
      return LineFlag.EDGE_RISING | LineFlag.EDGE_FALLING;
  }
}

/**
 * A LineBackend over a host GPIO chip (the Linux GPIO character device, uAPI v2). Guest line i is
 * chip offset lines[i]. A line is requested (one request per line, consumer 'vgpio') when the
 * guest first sets a direction or an IRQ type, reconfigured in place after that, and released at
 * SET_DIRECTION NONE. Values are raw levels (never ACTIVE_LOW). Edge events are read from the
 * request fd; level IRQ types request both edges and the device re-checks the level (sense:
 * GET_VALUES) whenever the guest's eventq buffer arrives.
 */
export class HostChipLines implements LineBackend {
  readonly ngpio: number;
  readonly names: readonly string[];
  readonly chip: ChipInfo;
  readonly path: string;
  private chipFd: number | null;
  private stateNow: HostChipState = 'open';
  private goneReason = '';
  private readonly lines: HostLine[];
  private readonly consumer: string;
  private readonly io: ChipIo;
  private readonly log: NonNullable<HostChipOptions['log']>;
  private readonly listeners: Array<(c: LevelChange) => void> = [];
  private readonly goneListeners: Array<(reason: string) => void> = [];
  private readonly eventBuf = new Uint8Array(EVENTS_PER_READ * LINE_EVENT_SIZE);

  private constructor(opts: HostChipOptions, chipFd: number, chip: ChipInfo, offsets: readonly number[]) {
    this.path = opts.path;
    this.io = opts.io;
    this.log = opts.log ?? (() => {});
    this.consumer = opts.consumer ?? 'vgpio';
    this.chipFd = chipFd;
    this.chip = chip;
    this.ngpio = offsets.length;
    this.lines = offsets.map((offset) => ({
      offset,
      fd: null,
      watch: null,
      direction: Direction.NONE,
      irqType: IrqType.NONE,
      reported: 0,
    }));
    // Names from the chip; a name the chip repeats is kept on its first line only (virtio names are unique).
    const seen = new Set<string>();
    this.names = offsets.map((offset) => {
      const name = this.lineInfo(offset).name;
      // eslint-disable-next-line no-control-regex
      if (name === '' || seen.has(name) || !/^[\x01-\x7f]+$/.test(name)) return '';
      seen.add(name);
      return name;
    });
  }

  /** Opens the chip and reads its line names; throws a precise Error when that is not possible. */
  static open(opts: HostChipOptions): HostChipLines {
    checkIoctlEncoding(opts.arch);
    let fd: number;
    try {
      fd = opts.io.open(opts.path);
    } catch (e) {
      throw new Error(`cannot open GPIO chip ${opts.path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const info = new Uint8Array(CHIPINFO_SIZE);
      try {
        opts.io.ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, info);
      } catch (e) {
        const hint = errnoCode(e) === 'ENOTTY' ? ' (not a GPIO character device)' : '';
        throw new Error(`${opts.path}: GPIO_GET_CHIPINFO: ${(e as Error).message}${hint}`, { cause: e });
      }
      const chip = decodeChipInfo(info);
      const offsets = opts.lines ?? Array.from({ length: chip.lines }, (_, i) => i);
      if (offsets.length === 0) throw new Error(`${opts.path}: no lines to serve`);
      if (offsets.length > 0xffff) throw new Error(`${opts.path}: more than 65535 lines`);
      const dup = offsets.find((o, i) => offsets.indexOf(o) !== i);
      if (dup !== undefined) throw new Error(`${opts.path}: line ${dup} is listed twice`);
      const bad = offsets.find((o) => !Number.isInteger(o) || o < 0 || o >= chip.lines);
      if (bad !== undefined)
        throw new Error(`${opts.path}: no line ${bad} (${chip.name} has lines 0..${chip.lines - 1})`);
      return new HostChipLines(opts, fd, chip, offsets);
    } catch (e) {
      opts.io.close(fd);
      throw e;
    }
  }

  get state(): HostChipState {
    return this.stateNow;
  }

  /** The chip offset that guest line `line` is. */
  offsetOf(line: number): number {
    return this.line(line).offset;
  }

  // --- LineBackend ---

  setDirection(line: number, direction: Direction, value: Level): void {
    const l = this.line(line);
    if (direction === Direction.NONE) {
      l.direction = Direction.NONE;
      l.irqType = IrqType.NONE;
      this.release(l);
      return;
    }
    this.configure(line, l, direction, l.irqType, value);
    l.direction = direction;
    if (direction === Direction.IN) l.reported = this.readValue(line, l);
  }

  drive(line: number, value: Level): void {
    const l = this.line(line);
    if (l.fd === null || l.direction !== Direction.OUT) return;
    this.ioctlOn(line, l.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, encodeLineValues(value), 'SET_VALUES');
  }

  sense(line: number): Level {
    const l = this.line(line);
    if (this.stateNow === 'gone') throw this.goneFault(line);
    // An unrequested line is not ours to read (requesting it would take it from its owner): 0.
    return l.fd === null ? 0 : this.readValue(line, l);
  }

  watch(line: number, type: IrqType): void {
    const l = this.line(line);
    if (type === IrqType.NONE) {
      l.irqType = IrqType.NONE;
      if (l.fd === null || this.stateNow === 'gone') return;
      try {
        this.configure(
          line,
          l,
          l.direction === Direction.OUT ? Direction.OUT : Direction.IN,
          IrqType.NONE,
          0,
        );
      } catch {
        // Logged by configure; the line answers ERR on its next request.
      }
      return;
    }
    this.configure(line, l, Direction.IN, type, 0);
    l.direction = Direction.IN;
    l.irqType = type;
    // The device just sensed the level as its edge reference: report edges from the same level.
    l.reported = this.readValue(line, l);
  }

  onChange(listener: (change: LevelChange) => void): void {
    this.listeners.push(listener);
  }

  /** Called once when the chip stops answering (state 'gone'). */
  onGone(listener: (reason: string) => void): void {
    this.goneListeners.push(listener);
  }

  close(): void {
    for (const l of this.lines) this.release(l);
    if (this.chipFd !== null) this.io.close(this.chipFd);
    this.chipFd = null;
    this.listeners.length = 0;
    this.goneListeners.length = 0;
  }

  // --- requests ---

  /** Requests the line, or reconfigures its request, for `direction` with `type`'s edge detection. */
  private configure(line: number, l: HostLine, direction: Direction, type: IrqType, value: Level): void {
    if (this.stateNow === 'gone') throw this.goneFault(line);
    const config: LineConfig =
      direction === Direction.OUT
        ? { flags: LineFlag.OUTPUT, outputValue: value }
        : { flags: LineFlag.INPUT | edgeFlags(type) };
    if (l.fd !== null) {
      this.ioctlOn(line, l.fd, GPIO_V2_LINE_SET_CONFIG_IOCTL, encodeLineConfig(config), 'SET_CONFIG');
      return;
    }
    const req = encodeLineRequest(l.offset, this.consumer, config);
    try {
      this.io.ioctl(this.chipFdOrFault(line), GPIO_V2_GET_LINE_IOCTL, req);
    } catch (e) {
      throw this.fault(line, l, 'GET_LINE', e);
    }
    const fd = requestFdOf(req);
    l.fd = fd;
    try {
      l.watch = this.io.watch(fd, (err) => this.onReadable(line, l, fd, err));
    } catch (e) {
      this.release(l);
      throw this.fault(line, l, 'watch', e);
    }
    this.log('debug', 'requested host line', { line, offset: l.offset, fd });
  }

  private release(l: HostLine): void {
    l.watch?.close();
    l.watch = null;
    if (l.fd !== null) {
      try {
        this.io.close(l.fd);
      } catch {
        // Already gone with the chip: nothing to release.
      }
    }
    l.fd = null;
  }

  private readValue(line: number, l: HostLine): Level {
    if (l.fd === null) return 0;
    const values = encodeLineValues();
    this.ioctlOn(line, l.fd, GPIO_V2_LINE_GET_VALUES_IOCTL, values, 'GET_VALUES');
    return lineValueOf(values);
  }

  private ioctlOn(line: number, fd: number, request: number, arg: Uint8Array, what: string): void {
    if (this.stateNow === 'gone') throw this.goneFault(line);
    try {
      this.io.ioctl(fd, request, arg);
    } catch (e) {
      throw this.fault(line, this.line(line), what, e);
    }
  }

  private chipFdOrFault(line: number): number {
    if (this.chipFd === null) throw new LineFault(line, `${this.path} is closed`);
    return this.chipFd;
  }

  /** Turns a failed call into the LineFault the guest's request answers ERR for, and logs why. */
  private fault(line: number, l: HostLine, what: string, e: unknown): LineFault {
    const code = errnoCode(e);
    if (code === 'ENODEV' || code === 'EIO' || code === 'ENXIO') {
      this.markGone(`${what}: ${code}`);
      return this.goneFault(line);
    }
    if (code === 'EBUSY') {
      const holder = this.holderOf(l.offset);
      const msg = `line ${line} (${this.path} offset ${l.offset}) is busy: held by ${holder}`;
      this.log('warn', msg, { line, offset: l.offset, holder });
      return new LineFault(line, msg);
    }
    const msg = `line ${line} (${this.path} offset ${l.offset}): ${what} failed: ${(e as Error).message}`;
    this.log('warn', msg, { line, offset: l.offset });
    return new LineFault(line, msg);
  }

  private holderOf(offset: number): string {
    try {
      const consumer = this.lineInfo(offset).consumer;
      return consumer === '' ? 'an unnamed consumer' : JSON.stringify(consumer);
    } catch {
      return 'an unknown consumer';
    }
  }

  private lineInfo(offset: number): ReturnType<typeof decodeLineInfo> {
    const info = encodeLineInfoQuery(offset);
    this.io.ioctl(this.chipFdOrFault(offset), GPIO_V2_GET_LINEINFO_IOCTL, info);
    return decodeLineInfo(info);
  }

  /** The chip went away: every line answers ERR from now on, logged once. */
  private markGone(reason: string): void {
    if (this.stateNow === 'gone') return;
    this.stateNow = 'gone';
    this.goneReason = reason;
    this.log('error', `GPIO chip ${this.path} is gone (${reason}): its lines answer ERR`, {
      chip: this.path,
    });
    for (const l of this.lines) {
      l.watch?.close();
      l.watch = null;
    }
    for (const listener of this.goneListeners) listener(reason);
  }

  private goneFault(line: number): LineFault {
    return new LineFault(line, `GPIO chip ${this.path} is gone (${this.goneReason})`);
  }

  // --- edge events ---

  /** The request fd is readable: drain every event, reporting each level change in order. */
  private onReadable(line: number, l: HostLine, fd: number, err: Error | null): void {
    if (l.fd !== fd) return; // a late callback for a request released meanwhile
    if (err) {
      this.onEventFailure(line, l, err);
      return;
    }
    for (;;) {
      let n: number | null;
      try {
        n = this.io.read(fd, this.eventBuf);
      } catch (e) {
        this.onEventFailure(line, l, e);
        return;
      }
      if (n === null || n === 0) return;
      for (const ev of decodeLineEvents(this.eventBuf.subarray(0, n)))
        this.onEvent(line, l, ev.id, ev.timestampNs);
      if (l.fd !== fd) return; // a listener released the line
    }
  }

  private onEvent(line: number, l: HostLine, id: number, timestampNs: bigint): void {
    const level: Level = id === LineEventId.RISING_EDGE ? 1 : 0;
    // With one edge detected (or events lost to a full kernel buffer) two reported events can have
    // the same direction: report the opposite edge in between, so every reported change is a change.
    if (level === l.reported) this.report({ line, level: level === 1 ? 0 : 1, timestampNs });
    this.report({ line, level, timestampNs });
  }

  private report(change: LevelChange): void {
    const l = this.line(change.line);
    l.reported = change.level;
    for (const listener of this.listeners) listener(change);
  }

  private onEventFailure(line: number, l: HostLine, e: unknown): void {
    const code = errnoCode(e);
    if (code === 'ENODEV' || code === 'EIO' || code === 'ENXIO' || this.probeGone(line, l)) {
      this.markGone(`read events: ${code ?? (e as Error).message}`);
      return;
    }
    this.log(
      'warn',
      `line ${line} (${this.path} offset ${l.offset}): reading edge events failed: ${(e as Error).message}`,
    );
    l.watch?.close();
    l.watch = null;
  }

  /** After a poll error: does the request still answer? */
  private probeGone(line: number, l: HostLine): boolean {
    if (l.fd === null) return false;
    try {
      this.io.ioctl(l.fd, GPIO_V2_LINE_GET_VALUES_IOCTL, encodeLineValues());
      return false;
    } catch (e) {
      return errnoCode(e) === 'ENODEV';
    }
  }

  private line(line: number): HostLine {
    const l = this.lines[line];
    if (!l) throw new RangeError(`line ${line} out of range (0..${this.ngpio - 1})`);
    return l;
  }
}
