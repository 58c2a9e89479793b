import type { Level } from '../device/line-backend.ts';
import type { PeripheralSpec } from './board-schema.ts';
import { Button } from './button.ts';
import { Clock } from './clock.ts';
import { Encoder } from './encoder.ts';
import { Follower } from './follower.ts';
import { Pattern } from './pattern.ts';
import type { Peripheral } from './peripheral-io.ts';

/** The built-in peripheral for a board file entry (a "module" entry is a UserPeripheral). */
export function createPeripheral(
  spec: Exclude<PeripheralSpec, { type: 'module' }>,
  board: { pullOf(role: string): Level | null },
): Peripheral {
  switch (spec.type) {
    case 'button':
      return new Button(spec, board.pullOf('line'));
    case 'clock':
      return new Clock(spec);
    case 'pattern':
      return new Pattern(spec);
    case 'follower':
      return new Follower(spec);
    case 'encoder':
      return new Encoder(spec);
  }
}
