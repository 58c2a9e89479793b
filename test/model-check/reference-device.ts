import {
  Direction,
  IrqStatus,
  IrqType,
  MessageType,
  Status,
  isEdgeType,
  isLevelType,
} from '../../src/protocol/constants.ts';
import type { GpioRequest } from '../../src/protocol/messages.ts';

/** One hand-back: the line's eventq buffer returned with a status. */
export type HandBack = readonly [line: number, status: IrqStatus];

interface RefLine {
  direction: Direction;
  type: IrqType;
  /** The line's eventq buffer is held: unmasked. */
  armed: boolean;
  /** An edge happened while enabled and masked (docs/protocol.md §2: latched). */
  owed: boolean;
  level: 0 | 1;
}

/**
 * The oracle: the per-line interrupt rules of virtio 1.2 §5.18 (docs/protocol.md §2 and D-rules)
 * written from the spec, independently of src/device. Fed the same inputs as the real device,
 * it says which buffers must come back, with which status, and what each reply must be.
 */
export class ReferenceDevice {
  private readonly lines: RefLine[];
  private suspended = false;

  constructor(ngpio: number) {
    this.lines = Array.from({ length: ngpio }, () => ({
      direction: Direction.NONE,
      type: IrqType.NONE,
      armed: false,
      owed: false,
      level: 0,
    }));
  }

  line(n: number): Readonly<RefLine> {
    return this.lines[n];
  }

  /** The host changes an input's level. */
  input(n: number, level: 0 | 1): HandBack[] {
    const l = this.lines[n];
    if (l.direction === Direction.OUT || l.level === level) return [];
    l.level = level;
    const want = level === 1 ? IrqType.EDGE_RISING : IrqType.EDGE_FALLING;
    if ((l.type & want) !== 0) {
      if (l.armed && !this.suspended) return this.fire(n);
      l.owed = true; // more edges coalesce into this one
      return [];
    }
    if (this.levelActive(l) && l.armed && !this.suspended) return this.fire(n);
    return [];
  }

  /** An edge the line's type reports? (for the driver-side accounting) */
  isReportedEdge(n: number, level: 0 | 1): boolean {
    const l = this.lines[n];
    if (l.direction === Direction.OUT || l.level === level) return false;
    return (l.type & (level === 1 ? IrqType.EDGE_RISING : IrqType.EDGE_FALLING)) !== 0;
  }

  /** The line's eventq buffer arrives: INVALID back, VALID back (pending edge, active level), or held. */
  buffer(n: number): HandBack[] {
    const l = this.lines[n];
    if (!l || l.type === IrqType.NONE || l.armed) return [[n, IrqStatus.INVALID]];
    l.armed = true;
    return this.suspended ? [] : this.pending(n);
  }

  request(req: GpioRequest): { handBacks: HandBack[]; status: Status; value: number | null } {
    const l = this.lines[req.gpio];
    const ok = (handBacks: HandBack[] = [], value: number | null = 0) => ({
      handBacks,
      status: Status.OK,
      value,
    });
    const err = { handBacks: [], status: Status.ERR, value: null };
    if (!l) return err;
    switch (req.type) {
      case MessageType.GET_VALUE:
        return ok([], l.level);
      case MessageType.SET_DIRECTION:
        if (req.value === Direction.NONE) {
          const hb = this.disable(req.gpio);
          l.direction = Direction.NONE;
          return ok(hb);
        }
        if (req.value === Direction.OUT && l.type !== IrqType.NONE) return err;
        l.direction = req.value as Direction;
        return ok();
      case MessageType.SET_IRQ_TYPE: {
        if (req.value === IrqType.NONE) return ok(this.disable(req.gpio));
        if (l.direction === Direction.OUT) return err;
        if (l.type === req.value) return ok();
        if (l.type !== IrqType.NONE) return err; // disable before changing the type
        if (l.direction === Direction.NONE) l.direction = Direction.IN;
        l.type = req.value as IrqType;
        l.owed = false;
        return ok();
      }
      default:
        return { handBacks: [], status: Status.OK, value: null }; // not checked here
    }
  }

  suspend(): void {
    this.suspended = true;
  }

  resume(): HandBack[] {
    this.suspended = false;
    return this.lines.flatMap((_, n) => this.pending(n));
  }

  /** Rings dropped with the driver: interrupts off, latches and buffers gone; directions stay. */
  reset(): void {
    for (const l of this.lines) {
      l.type = IrqType.NONE;
      l.armed = false;
      l.owed = false;
    }
    this.suspended = false;
  }

  /** Per-line state, for the explorer's canonical encoding; `suspended` is the rest. */
  lineKeys(): string[] {
    return this.lines.map((l) => `${l.direction}${l.type}${+l.armed}${+l.owed}${l.level}`);
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  private disable(n: number): HandBack[] {
    const l = this.lines[n];
    const hb: HandBack[] = l.armed ? [[n, IrqStatus.INVALID]] : [];
    l.type = IrqType.NONE;
    l.armed = false;
    l.owed = false;
    return hb;
  }

  private pending(n: number): HandBack[] {
    const l = this.lines[n];
    if (!l.armed) return [];
    if (isEdgeType(l.type) && l.owed) {
      l.owed = false;
      return this.fire(n);
    }
    if (isLevelType(l.type) && this.levelActive(l)) return this.fire(n);
    return [];
  }

  private fire(n: number): HandBack[] {
    this.lines[n].armed = false;
    return [[n, IrqStatus.VALID]];
  }

  private levelActive(l: RefLine): boolean {
    return (
      (l.type === IrqType.LEVEL_HIGH && l.level === 1) || (l.type === IrqType.LEVEL_LOW && l.level === 0)
    );
  }
}
