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
  /** Moves not finished yet: a later move or stop ends them where the encoder then is. */
  private waiters: Array<() => void> = [];

  constructor(private readonly spec: EncoderSpec) {
    this.current = spec.position ?? 0;
    this.target = this.current;
  }

  get position(): number {
    return this.current;
  }

  /** Where the current move goes (the position once it has finished). */
  get targetPosition(): number {
    return this.target;
  }

  /** The A and B levels of the current position. */
  get levels(): { a: Level; b: Level } {
    const [a, b] = QUADRATURE[((this.current % 4) + 4) % 4];
    return { a, b };
  }

  start(io: PeripheralIo): void {
    this.io = io;
    this.apply();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.io = null;
    this.target = this.current;
    this.settle();
  }

  /**
   * Moves to `position`; resolves once the last step is on the lines, or when a later move or
   * stop() cuts this one short.
   */
  moveTo(position: number): Promise<void> {
    if (!Number.isSafeInteger(position))
      throw new RangeError(`encoder position ${position} is not an integer`);
    const io = this.io;
    if (!io) throw new Error('the encoder is not running');
    this.target = position;
    this.timer?.cancel();
    this.timer = null;
    this.settle();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      const step = () => {
        this.timer = null;
        if (this.current !== this.target) {
          this.current += this.target > this.current ? 1 : -1;
          this.apply();
        }
        if (this.current === this.target) this.settle();
        else this.timer = io.after(this.spec.stepMs ?? 1, step);
      };
      step();
    });
  }

  private settle(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private apply(): void {
    const { a, b } = this.levels;
    this.io?.set('a', a);
    this.io?.set('b', b);
  }
}
