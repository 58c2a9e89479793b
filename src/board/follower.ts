import type { FollowerSpec } from './board-schema.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';

/** An input that follows a line (usually a guest output), after `delayMs`, optionally inverted. */
export class Follower implements Peripheral {
  readonly type = 'follower';

  constructor(private readonly spec: FollowerSpec) {}

  start(io: PeripheralIo): void {
    const map = (l: 0 | 1): 0 | 1 => (this.spec.invert ? (l === 1 ? 0 : 1) : l);
    const delay = this.spec.delayMs ?? 0;
    io.set('to', map(io.level('from')));
    io.onLevel('from', (level) => {
      if (delay === 0) io.set('to', map(level));
      else io.after(delay, () => io.set('to', map(level)));
    });
  }

  stop(): void {}
}
