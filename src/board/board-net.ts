import type { Level } from '../device/line-backend.ts';
import type { BoardLines } from './board-lines.ts';

/** One thing that puts a level on a net: a wire's far end, a peripheral, a line on a shared net. */
export interface NetDriver {
  /** What it is, for messages ("wires[0] from a:0"). */
  readonly what: string;
  /** 0 or 1, or null while it lets go (high impedance). */
  value: Level | null;
}

/** A line on a board: a device's lines and an offset. */
export interface BoardPin {
  readonly lines: BoardLines;
  readonly line: number;
  /** "a:3" as the board file wrote it (or device:offset). */
  readonly label: string;
}

/**
 * Lines tied together and what drives them. Push-pull (a wire, a peripheral): the one driver that
 * drives sets the level. Open-drain (a shared net): any driver at 0 pulls the net low, else the net
 * reads its pull. Nothing driving: the pull, or 0 without one. Every member line senses the net's
 * level — on a push-pull net a guest output senses what it drives (SimulatedLines), on an open-drain
 * net it senses the wire like any other member (BoardLines.markOpenDrain).
 */
export class BoardNet {
  readonly drivers: NetDriver[] = [];
  private current: Level;
  private readonly listeners: Array<(level: Level) => void> = [];
  private contentionLogged = false;

  constructor(
    readonly pins: readonly BoardPin[],
    readonly pull: Level | null,
    readonly openDrain: boolean,
    private readonly warn: (message: string) => void,
  ) {
    this.current = this.resolve();
    for (const p of pins) p.lines.applyLevel(p.line, this.current);
  }

  get level(): Level {
    return this.current;
  }

  get label(): string {
    return this.pins.map((p) => p.label).join(', ');
  }

  addDriver(what: string, value: Level | null = null): NetDriver {
    const d: NetDriver = { what, value };
    this.drivers.push(d);
    for (const p of this.pins) p.lines.claim(p.line, what);
    return d;
  }

  /** Sets a driver's value and applies the net's new level. */
  drive(driver: NetDriver, value: Level | null): void {
    driver.value = value;
    this.update();
  }

  onLevel(fn: (level: Level) => void): void {
    this.listeners.push(fn);
  }

  private update(): void {
    const level = this.resolve();
    if (level === this.current) return;
    this.current = level;
    for (const p of this.pins) p.lines.applyLevel(p.line, level);
    for (const l of this.listeners) l(level);
  }

  private resolve(): Level {
    let low = false;
    let high = false;
    for (const d of this.drivers) {
      if (d.value === 0) low = true;
      else if (d.value === 1) high = true;
    }
    if (this.openDrain) return low ? 0 : (this.pull ?? 1);
    if (low && high && !this.contentionLogged) {
      this.contentionLogged = true;
      this.warn(
        `${this.label}: driven high and low at once (push-pull contention): reads 0; put the lines on a shared net for open-drain`,
      );
    }
    if (low) return 0;
    if (high) return 1;
    return this.pull ?? 0;
  }
}
