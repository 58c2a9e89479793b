import type { Level } from '../device/line-backend.ts';
import type { Scheduled } from './board-scheduler.ts';
import type { ButtonSpec } from './board-schema.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';

/**
 * A push button between the line and a rail: pressed, it drives `pressed` (by default the opposite
 * of the line's pull, 1 without one); released, it lets go and the line reads its pull. With
 * `bounce: { transitions: N, withinMs: T }` each press and release makes N changes (odd), evenly
 * spaced over T ms and ending in the new state — the chatter a debouncer must absorb.
 */
export class Button implements Peripheral {
  readonly type = 'button';
  private io: PeripheralIo | null = null;
  private readonly pressedLevel: Level;
  private pending: Scheduled[] = [];
  private isPressed = false;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly spec: ButtonSpec,
    pull: Level | null,
  ) {
    this.pressedLevel = spec.pressed ?? (pull === 1 ? 0 : 1);
  }

  start(io: PeripheralIo): void {
    this.io = io;
  }

  stop(): void {
    this.cancel();
    this.io = null;
  }

  get pressed(): boolean {
    return this.isPressed;
  }

  press(): void {
    this.to(true);
  }

  release(): void {
    this.to(false);
  }

  /** Press, hold `holdMs` after the bounce, release; resolves once the release has settled. */
  click(holdMs = 50): Promise<void> {
    this.press();
    const io = this.io;
    if (!io) return Promise.resolve();
    const bounceMs = this.spec.bounce?.withinMs ?? 0;
    return new Promise((resolve) => {
      // A press or release that cuts the click short (or stop) ends it too.
      this.waiters.push(resolve);
      this.pending.push(
        io.after(bounceMs + holdMs, () => {
          this.to(false, false);
          this.pending.push(io.after(bounceMs, resolve));
        }),
      );
    });
  }

  private to(pressed: boolean, cancelFirst = true): void {
    const io = this.io;
    if (!io) throw new Error('the button is not running');
    if (cancelFirst) this.cancel();
    this.isPressed = pressed;
    const final: Level | null = pressed ? this.pressedLevel : null;
    const other: Level | null = pressed ? null : this.pressedLevel;
    const b = this.spec.bounce;
    if (!b || b.transitions === 1) {
      io.set('line', final);
      return;
    }
    // Changes k = 0..N-1 at k·T/(N-1): even k to the new state, odd k back (N is odd: it ends new).
    for (let k = 0; k < b.transitions; k++) {
      const level = k % 2 === 0 ? final : other;
      if (k === 0) io.set('line', level);
      else this.pending.push(io.after((k * b.withinMs) / (b.transitions - 1), () => io.set('line', level)));
    }
  }

  private cancel(): void {
    for (const p of this.pending) p.cancel();
    this.pending = [];
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
