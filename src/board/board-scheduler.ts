/** A scheduled callback; cancel() before it runs and it never does. */
export interface Scheduled {
  cancel(): void;
}

interface Entry {
  deadlineNs: bigint;
  seq: number;
  run: () => void;
  cancelled: boolean;
}

const NS_PER_MS = 1_000_000;
/** How early a callback may run (half of Node's 1 ms timer granularity). */
export const EARLY_NS = 500_000n;
const msToNs = (ms: number): bigint => BigInt(Math.round(ms * NS_PER_MS));

/**
 * Board time: callbacks at absolute deadlines on the monotonic clock, kept in a min-heap with one
 * Node timer armed for the earliest. A repeating callback's k-th deadline is start + k·period, never
 * "last run + period", so lateness of one run (timer granularity, a busy loop) never accumulates.
 * Callbacks due together run in deadline order, ties in the order they were scheduled. A callback
 * runs at most 0.5 ms before its deadline (see EARLY_NS), and late by however long the event loop
 * was busy.
 */
export class BoardScheduler {
  private readonly heap: Entry[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt: bigint | null = null;
  private closed = false;
  /** The board's epoch: now() counts from here. */
  readonly startNs: bigint;

  constructor(
    private readonly onError: (error: unknown) => void = (e) =>
      queueMicrotask(() => {
        throw e;
      }),
  ) {
    this.startNs = process.hrtime.bigint();
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
    if (this.closed) return { cancel() {} };
    const e: Entry = { deadlineNs, seq: this.seq++, run: fn, cancelled: false };
    this.push(e);
    this.arm();
    return {
      cancel: () => {
        e.cancelled = true;
      },
    };
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
    const period = msToNs(periodMs);
    let k = 1;
    let current: Scheduled | null = null;
    let cancelled = false;
    const step = () => {
      if (cancelled) return;
      const index = k;
      const late = process.hrtime.bigint() - (startNs + BigInt(k) * period);
      k += 1 + (late > period ? Number(late / period) : 0);
      current = this.at(startNs + BigInt(k) * period, step);
      fn(index);
    };
    current = this.at(startNs + period, step);
    return {
      cancel: () => {
        cancelled = true;
        current?.cancel();
      },
    };
  }

  /** Stops every pending callback; nothing runs afterwards. */
  close(): void {
    this.closed = true;
    this.heap.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = null;
  }

  /** How many callbacks are pending (cancelled ones are dropped lazily). */
  get pending(): number {
    return this.heap.filter((e) => !e.cancelled).length;
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    const first = this.heap[0];
    if (!first) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = null;
      return;
    }
    if (this.timerAt !== null && this.timerAt <= first.deadlineNs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = first.deadlineNs;
    const waitMs = Number(first.deadlineNs - process.hrtime.bigint()) / NS_PER_MS;
    // Node timers have millisecond granularity (1 ms at least) and never fire early: round to the
    // nearest millisecond, then run whatever is due when the timer fires (the deadline, not the
    // timer, says what is due).
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.round(waitMs)));
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = null;
    // What is due when the timer fired, and within half a millisecond after: the next timer cannot
    // come sooner than 1 ms, so running those now (≤ 0.5 ms early) is nearer their deadline than
    // running them then. Callbacks that schedule more work for "now" (a zero-delay loop) run on
    // the next turn, never in this loop.
    const due = process.hrtime.bigint() + EARLY_NS;
    const newSince = this.seq;
    const deferred: Entry[] = [];
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
        deferred.push(first);
        continue;
      }
      try {
        first.run();
      } catch (e) {
        this.onError(e);
      }
      if (this.closed) return;
    }
    for (const e of deferred) this.push(e);
    this.arm();
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
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
        [h[i], h[m]] = [h[m], h[i]];
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
