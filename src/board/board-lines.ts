import type { Level } from '../device/line-backend.ts';
import { SimulatedLines } from '../device/simulated-lines.ts';
import type { Button } from './button.ts';
import type { Clock } from './clock.ts';
import type { Encoder } from './encoder.ts';

/** Setting by hand an input that the board drives (a wire, a net, a peripheral). */
export class BoardDrivenError extends Error {
  override name = 'BoardDrivenError';
}

/** A built-in peripheral a control client can operate, as it sits on one of its lines. */
export interface LinePeripheral {
  /** Its name in the board file (or its type and index). */
  readonly name: string;
  /** Which of its lines this is: "line", or "a" / "b" for an encoder. */
  readonly role: string;
  readonly peripheral: Button | Clock | Encoder;
}

/**
 * A device's simulated lines on a board. The board applies what its wires, nets, pulls and
 * peripherals put on a line through {@link applyLevel}; setting such a line from outside
 * (`setInput`, hence the control socket's `input` and `pulse`) is refused with a message naming
 * what drives it. A line on a shared open-drain net senses the net even while the guest drives it
 * as an output (another driver holding the net low reads 0 however this output drives it), as a
 * real open-drain pin reads its wire. Lines the board leaves alone behave exactly as plain
 * SimulatedLines.
 */
export class BoardLines extends SimulatedLines {
  private readonly drivenBy = new Map<number, string>();
  private readonly peripherals = new Map<number, LinePeripheral>();
  private readonly openDrain = new Set<number>();

  constructor(
    readonly deviceName: string,
    ngpio: number,
    names: readonly string[] = [],
  ) {
    super(ngpio, names);
  }

  /** Marks `line` as the board's: `what` says by what, for the refusal. */
  claim(line: number, what: string): void {
    this.drivenBy.set(line, what);
  }

  /** Puts `line` on a shared open-drain net: from now on it senses the net's level, output or not. */
  markOpenDrain(line: number): void {
    this.openDrain.add(line);
  }

  isOpenDrain(line: number): boolean {
    return this.openDrain.has(line);
  }

  /** The board's button on `line`, for the control socket's press/release/click. */
  buttonOn(line: number): Button | undefined {
    const p = this.peripherals.get(line)?.peripheral;
    return p?.type === 'button' ? p : undefined;
  }

  /** The built-in peripheral on `line` that a control client can operate (button, clock, encoder). */
  peripheralOn(line: number): LinePeripheral | undefined {
    return this.peripherals.get(line);
  }

  attachPeripheral(line: number, entry: LinePeripheral): void {
    this.peripherals.set(line, entry);
  }

  /** Takes `peripheral` off `line` (a stopped peripheral); another one attached there stays. */
  detachPeripheral(line: number, peripheral: LinePeripheral['peripheral']): void {
    if (this.peripherals.get(line)?.peripheral === peripheral) this.peripherals.delete(line);
  }

  /** What drives the line, or undefined when it is free to set by hand. */
  driverOf(line: number): string | undefined {
    return this.drivenBy.get(line);
  }

  /** On an open-drain net the level applied from outside is the net's: an output reads it too. */
  override sense(line: number): Level {
    return this.openDrain.has(line) ? this.input(line) : super.sense(line);
  }

  override setInput(line: number, level: Level): void {
    const what = this.drivenBy.get(line);
    if (what !== undefined) {
      const name = this.names[line] ? ` (${this.names[line]})` : '';
      throw new BoardDrivenError(
        `line ${line}${name} of ${this.deviceName} is driven by ${what}: it cannot also be set by hand`,
      );
    }
    super.setInput(line, level);
  }

  /** The board's own path: what the line's net resolves to. */
  applyLevel(line: number, level: Level): void {
    super.setInput(line, level);
  }
}
