import type { Scheduled } from './board-scheduler.ts';
import type { ClockSpec } from './board-schema.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';

/**
 * A square wave: high at start + k·period, low at start + k·period + duty·period, both by absolute
 * deadline (no drift over long runs). Stopped, it drives 0.
 */
export class Clock implements Peripheral {
  readonly type = 'clock';
  private io: PeripheralIo | null = null;
  private timers: Scheduled[] = [];

  constructor(private readonly spec: ClockSpec) {}

  start(io: PeripheralIo): void {
    this.io = io;
    io.set('line', 0);
    if (this.spec.running ?? true) this.run();
  }

  stop(): void {
    this.halt();
    this.io = null;
  }

  get running(): boolean {
    return this.timers.length > 0;
  }

  get periodMs(): number {
    return this.spec.periodMs;
  }

  /** The fraction of the period spent high. */
  get duty(): number {
    return this.spec.duty ?? 0.5;
  }

  /** Starts ticking (the first rising edge now). */
  run(): void {
    const io = this.io;
    if (!io) throw new Error('the clock is not running');
    if (this.running) return;
    const period = this.spec.periodMs;
    const highMs = period * (this.spec.duty ?? 0.5);
    const t0 = io.now();
    io.set('line', 1);
    this.timers.push(io.every(period, () => io.set('line', 0), t0 + highMs));
    this.timers.push(io.every(period, () => io.set('line', 1), t0 + period));
  }

  /** Stops ticking and drives 0. */
  halt(): void {
    for (const t of this.timers) t.cancel();
    this.timers = [];
    this.io?.set('line', 0);
  }
}
