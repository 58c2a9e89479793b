import type { Scheduled } from './board-scheduler.ts';
import type { PatternSpec } from './board-schema.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';

/**
 * Levels with durations: step i's level is applied at the sum of the durations before it, measured
 * from the start (absolute, no drift); with `loop` the sequence repeats, else the last level stays.
 */
export class Pattern implements Peripheral {
  readonly type = 'pattern';
  private timer: Scheduled | null = null;
  private stopped = false;

  constructor(private readonly spec: PatternSpec) {}

  start(io: PeripheralIo): void {
    const steps = this.spec.steps;
    const cycle = steps.reduce((t, s) => t + s.ms, 0);
    const t0 = io.now();
    let i = 0;
    let offset = 0;
    const apply = () => {
      if (this.stopped) return;
      const step = steps[i % steps.length];
      io.set('line', step.level);
      offset += step.ms;
      i++;
      if (i >= steps.length && !this.spec.loop) return;
      // The next change at its absolute time (t0 + offset), however late this one ran.
      this.timer = io.after(Math.max(0, t0 + offset - io.now()), apply);
    };
    if (cycle === 0 && this.spec.loop) return;
    apply();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}
