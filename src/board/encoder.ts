import type { Level } from '../device/line-backend.ts';
import type { Scheduled } from './board-scheduler.ts';
import type { EncoderSpec } from './board-schema.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';

/** Quadrature (Gray code) A/B for a position: A leads B when the position grows. */
export const QUADRATURE: ReadonlyArray<readonly [Level, Level]> = [
  [0, 0],
  [1, 0],
  [1, 1],
  [0, 1],
];

/**
 * A rotary encoder: `moveTo(p)` steps from the current position to p one quadrature state at a
 * time, `stepMs` apart, so every intermediate state appears on A/B (one line changes per step).
 */
export class Encoder implements Peripheral {
  readonly type = 'encoder';
  private io: PeripheralIo | null = null;
  private current: number;
  private target: number;
  private timer: Scheduled | null = null;

  constructor(private readonly spec: EncoderSpec) {
    this.current = spec.position ?? 0;
    this.target = this.current;
  }

  get position(): number {
    return this.current;
  }

  start(io: PeripheralIo): void {
    this.io = io;
    this.apply();
  }

  stop(): void {
    this.timer?.cancel();
    this.io = null;
  }

  /** Moves to `position`; resolves once the last step is on the lines. */
  moveTo(position: number): Promise<void> {
    if (!Number.isInteger(position)) throw new RangeError(`encoder position ${position} is not an integer`);
    const io = this.io;
    if (!io) throw new Error('the encoder is not running');
    this.target = position;
    this.timer?.cancel();
    return new Promise((resolve) => {
      const step = () => {
        if (this.current === this.target) return resolve();
        this.current += this.target > this.current ? 1 : -1;
        this.apply();
        if (this.current === this.target) resolve();
        else this.timer = io.after(this.spec.stepMs ?? 1, step);
      };
      step();
    });
  }

  private apply(): void {
    const [a, b] = QUADRATURE[((this.current % 4) + 4) % 4];
    this.io?.set('a', a);
    this.io?.set('b', b);
  }
}
