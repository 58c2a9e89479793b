/**
 * What wakes board time: one pending wake-up at an absolute deadline on the monotonic clock (the
 * clock of `process.hrtime.bigint()`). The scheduler arms it for its earliest deadline and runs what
 * is due when it calls back; the source says how far from a deadline its wake-ups land.
 */
export interface BoardTimer {
  /** 'node' (setTimeout) or 'timerfd' (the addon's timerfd, src/board/board-timerfd.ts). */
  readonly kind: string;
  /**
   * How early a callback may run: when the source wakes, what is due within this much after now
   * runs now, since the next wake-up cannot be sooner (read at every wake-up: it may change).
   */
  readonly earlyNs: bigint;
  /** The shortest time between two wake-ups of a loop that keeps scheduling work for "now". */
  readonly turnNs: bigint;
  /** Wake once, at `deadlineNs` or after it (at once if it has passed); replaces the pending wake-up. */
  arm(deadlineNs: bigint): void;
  /** No wake-up until armed again. */
  disarm(): void;
  /** Releases what the source holds; it never wakes again. */
  close(): void;
}

/** Makes a source that calls `onWake` at the deadlines it is armed for. */
export type BoardTimerFactory = (onWake: () => void) => BoardTimer;

const NS_PER_MS = 1_000_000;

/**
 * Node's timers: millisecond granularity (1 ms at least), never early. The deadline is rounded to
 * the nearest millisecond, so a callback may run up to 0.5 ms early; the scheduler then runs what
 * is due within that half millisecond, which is nearer its deadline than the next timer could be.
 * Needs nothing but Node (the in-process loopback board uses it).
 */
export class NodeBoardTimer implements BoardTimer {
  readonly kind = 'node';
  readonly earlyNs = 500_000n;
  readonly turnNs = 1_000_000n;
  private timer: NodeJS.Timeout | null = null;
  private readonly fire = (): void => {
    this.timer = null;
    this.onWake();
  };

  constructor(private readonly onWake: () => void) {}

  arm(deadlineNs: bigint): void {
    if (this.timer) clearTimeout(this.timer);
    const waitMs = Number(deadlineNs - process.hrtime.bigint()) / NS_PER_MS;
    this.timer = setTimeout(this.fire, Math.max(0, Math.round(waitMs)));
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  close(): void {
    this.disarm();
  }
}

export const nodeBoardTimer: BoardTimerFactory = (onWake) => new NodeBoardTimer(onWake);
