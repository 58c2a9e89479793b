import { Direction, IrqType } from '../protocol/constants.ts';
import type { Level } from './line-backend.ts';

export interface LineCounters {
  /** Edges that matched the line's enabled edge type. */
  edges: number;
  /** Interrupts delivered (buffers handed back VALID). */
  delivered: number;
  /** Edges latched while masked. */
  latched: number;
  /** Edges folded into an already-pending latch. */
  coalesced: number;
  /** Buffers handed back INVALID. */
  invalid: number;
}

/** The device's protocol state for one line (docs/protocol.md §2). */
export class LineState<Token> {
  direction: Direction = Direction.NONE;
  /** Value the guest asked to drive (kept while not an output, used at SET_DIRECTION OUT). */
  value: Level = 0;
  irqType: IrqType = IrqType.NONE;
  /** The eventq buffer held for this line: the line is unmasked while this is set. */
  armed: Token | null = null;
  /** An edge happened while enabled and masked. */
  latched = false;
  /** Last level seen, for edge detection. */
  level: Level = 0;
  readonly counters: LineCounters = { edges: 0, delivered: 0, latched: 0, coalesced: 0, invalid: 0 };

  get enabled(): boolean {
    return this.irqType !== IrqType.NONE;
  }

  /** Is the level type's condition true at `level`? */
  levelActive(level: Level): boolean {
    return (
      (this.irqType === IrqType.LEVEL_HIGH && level === 1) ||
      (this.irqType === IrqType.LEVEL_LOW && level === 0)
    );
  }

  /** Does a change to `level` from the previous one match the edge type? */
  edgeMatches(level: Level): boolean {
    if (level === this.level) return false;
    const want = level === 1 ? IrqType.EDGE_RISING : IrqType.EDGE_FALLING;
    return (this.irqType & IrqType.EDGE_BOTH & want) !== 0;
  }
}
