import type { Direction, IrqType } from '../protocol/constants.ts';

export type Level = 0 | 1;

/** A change of the level the device senses on an input line. */
export interface LevelChange {
  line: number;
  level: Level;
  timestampNs: bigint;
}

/**
 * Where line levels come from and go to: simulated wires, or the host's /dev/gpiochipN.
 * The device model owns the protocol state; a backend only senses and drives. setDirection,
 * drive, watch and sense may throw a {@link LineFault}; releasing (direction or type NONE) never does.
 */
export interface LineBackend {
  readonly ngpio: number;
  /** Names the backend knows (host line names); '' for unnamed. */
  readonly names: readonly string[];
  /** The guest set the line's direction; for OUT, `value` is the level to drive. */
  setDirection(line: number, direction: Direction, value: Level): void;
  /** The guest drives an output. */
  drive(line: number, value: Level): void;
  /** The level the device senses on the line now. */
  sense(line: number): Level;
  /** Which edges the device needs reported for this line (NONE stops reporting). */
  watch(line: number, type: IrqType): void;
  /** Level changes on lines, reported as they happen. */
  onChange(listener: (change: LevelChange) => void): void;
  close(): void;
}

/**
 * A backend cannot do what the guest asked on a line (a host line held by another process, a host
 * chip gone): the request answers STATUS_ERR and the device keeps serving. The backend logs it.
 */
export class LineFault extends Error {
  override name = 'LineFault';
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}
