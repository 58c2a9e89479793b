import { nodeBoardTimer, type BoardTimer, type BoardTimerFactory } from './board-timer.ts';

/** A scheduled callback; cancel() before it runs and it never does. */
export interface Scheduled {
  cancel(): void;
}

/**
 * One pending callback. A repeating one (every) is the same entry throughout: each run moves its
 * deadline on and puts it back in the heap, so a tick allocates nothing.
 */
class Entry implements Scheduled {
  cancelled = false;
  /** Repeating only: the index of the deadline the entry waits for (start + k·period). */
  k = 1;

  constructor(
    private readonly owner: BoardScheduler,
    public deadlineNs: bigint,
    public seq: number,
    readonly run: ((k: number) => void) | null,
    readonly repeat: ((k: number) => void) | null,
    readonly startNs: bigint,
    readonly periodNs: bigint,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.owner.dropped(this);
  }
}

const NS_PER_MS = 1_000_000;
const msToNs = (ms: number): bigint => BigInt(Math.round(ms * NS_PER_MS));
const NOTHING: Scheduled = { cancel() {} };

/**
 * Board time: callbacks at absolute deadlines on the monotonic clock, kept in a min-heap with one
 * wake-up armed for the earliest (a {@link BoardTimer}: Node timers by default, or the addon's
 * timerfd). A repeating callback's k-th deadline is start + k·period, never "last run + period", so
 * lateness of one run (timer granularity, a busy loop) never accumulates. Callbacks due together
 * run in deadline order, ties in the order they were scheduled. A callback runs at most the
 * source's earlyNs before its deadline (0.5 ms with Node timers, 20 µs with the timerfd), and late
 * by however long the event loop was busy.
 */
export class BoardScheduler {
  private readonly heap: Entry[] = [];
  private seq = 0;
  private readonly timer: BoardTimer;
  /** The deadline the timer is armed for, or null. */
  private armedAt: bigint | null = null;
  private closed = false;
  /** True while due callbacks run: what they schedule is armed for once, when they are done. */
  private firing = false;
  /** The board's epoch: now() counts from here. */
  readonly startNs: bigint;

  constructor(
    private readonly onError: (error: unknown) => void = (e) =>
      queueMicrotask(() => {
        throw e;
      }),
    timer: BoardTimerFactory = nodeBoardTimer,
  ) {
    this.startNs = process.hrtime.bigint();
    this.timer = timer(() => this.fire());
  }

  /** Which wake source runs this board's time ('node' or 'timerfd'). */
  get timerKind(): string {
    return this.timer.kind;
  }

  /** How early a callback may run with this scheduler's wake source. */
  get earlyNs(): bigint {
    return this.timer.earlyNs;
  }

  /** Milliseconds since the board started (fractional). */
  now(): number {
    return Number(process.hrtime.bigint() - this.startNs) / NS_PER_MS;
  }

  nowNs(): bigint {
    return process.hrtime.bigint();
  }

  /** Runs `fn` at the absolute monotonic time `deadlineNs`. */
  at(deadlineNs: bigint, fn: () => void): Scheduled {
    if (this.closed) return NOTHING;
    const e = new Entry(this, deadlineNs, this.seq++, fn, null, 0n, 0n);
    this.push(e);
    if (!this.firing && (this.armedAt === null || deadlineNs < this.armedAt)) this.arm();
    return e;
  }

  /** Runs `fn` `ms` milliseconds from now. */
  after(ms: number, fn: () => void): Scheduled {
    checkMs(ms, 'after');
    return this.at(process.hrtime.bigint() + msToNs(ms), fn);
  }

  /**
   * Runs `fn(k)` at start + k·period for k = 1, 2, … (start defaults to now) until cancelled. A
   * run that comes later than the next deadline is not repeated: deadlines already past are skipped,
   * and `fn` gets the index of the deadline it stands for.
   */
  every(periodMs: number, fn: (k: number) => void, startNs = process.hrtime.bigint()): Scheduled {
    checkMs(periodMs, 'every');
    if (periodMs <= 0) throw new RangeError('every: the period must be more than 0 ms');
    if (this.closed) return NOTHING;
    const period = msToNs(periodMs);
    const e = new Entry(this, startNs + period, this.seq++, null, fn, startNs, period);
    this.push(e);
    if (!this.firing && (this.armedAt === null || e.deadlineNs < this.armedAt)) this.arm();
    return e;
  }

  /** Stops every pending callback; nothing runs afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.heap.length = 0;
    this.armedAt = null;
    this.timer.close();
  }

  /** How many callbacks are pending (cancelled ones are dropped lazily). */
  get pending(): number {
    return this.heap.filter((e) => !e.cancelled).length;
  }

  /**
   * A cancelled entry stays in the heap until it comes up; when it is the one the source is armed
   * for, re-arm for the next (or disarm), so a cancelled far deadline holds neither a wake-up nor
   * the event loop.
   */
  dropped(e: Entry): void {
    if (!this.firing && this.heap[0] === e) this.arm();
  }

  /** Arms the wake source for the earliest pending deadline, not before `notBeforeNs`. */
  private arm(notBeforeNs?: bigint): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    const first = this.heap[0];
    if (!first) {
      if (this.armedAt !== null) this.timer.disarm();
      this.armedAt = null;
      return;
    }
    const at = notBeforeNs !== undefined && notBeforeNs > first.deadlineNs ? notBeforeNs : first.deadlineNs;
    if (this.armedAt === at) return;
    this.armedAt = at;
    this.timer.arm(at);
  }

  private fire(): void {
    if (this.closed) return;
    this.armedAt = null;
    // What is due now, and within the source's earliness after now: the next wake-up cannot come
    // sooner, so running those now is nearer their deadline than running them then. Callbacks that
    // schedule more work for "now" (a zero-delay loop) run on a later turn, never in this loop.
    const now = process.hrtime.bigint();
    const due = now + this.timer.earlyNs;
    const newSince = this.seq;
    let deferred: Entry[] | null = null;
    this.firing = true;
    try {
      for (;;) {
        const first = this.heap[0];
        if (!first) break;
        if (first.cancelled) {
          this.pop();
          continue;
        }
        if (first.deadlineNs > due) break;
        this.pop();
        if (first.seq >= newSince) {
          (deferred ??= []).push(first);
          continue;
        }
        try {
          if (first.repeat) this.runRepeating(first, now);
          else first.run!(0);
        } catch (e) {
          this.onError(e);
        }
        if (this.closed) return;
      }
    } finally {
      this.firing = false;
    }
    if (deferred) for (const e of deferred) this.push(e);
    this.arm(deferred ? now + this.timer.turnNs : undefined);
  }

  /**
   * Moves a repeating entry to its next deadline (past the ones a run late at `now`, the wake-up,
   * missed) and runs it.
   */
  private runRepeating(e: Entry, now: bigint): void {
    const index = e.k;
    const late = now - e.deadlineNs;
    e.k += late > e.periodNs ? 1 + Number(late / e.periodNs) : 1;
    e.deadlineNs = e.k === index + 1 ? e.deadlineNs + e.periodNs : e.startNs + BigInt(e.k) * e.periodNs;
    e.seq = this.seq++;
    this.push(e);
    e.repeat!(index);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      const t = h[i];
      h[i] = h[p];
      h[p] = t;
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        const t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
      }
    }
    return top;
  }
}

const before = (a: Entry, b: Entry): boolean =>
  a.deadlineNs < b.deadlineNs || (a.deadlineNs === b.deadlineNs && a.seq < b.seq);

function checkMs(ms: number, what: string): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
    throw new RangeError(`${what}: expected a number of milliseconds ≥ 0, got ${String(ms)}`);
}
