import type { Level } from '../device/line-backend.ts';
import { SimulatedLines } from '../device/simulated-lines.ts';
import type { Button } from './button.ts';

/** Setting by hand an input that the board drives (a wire, a net, a peripheral). */
export class BoardDrivenError extends Error {
  override name = 'BoardDrivenError';
}

/**
 * A device's simulated lines on a board. The board applies what its wires, nets, pulls and
 * peripherals put on a line through {@link applyLevel}; setting such a line from outside
 * (`setInput`, hence the control socket's `input` and `pulse`) is refused with a message naming
 * what drives it. Lines the board leaves alone behave exactly as plain SimulatedLines.
 */
export class BoardLines extends SimulatedLines {
  private readonly drivenBy = new Map<number, string>();
  private readonly buttons = new Map<number, Button>();

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

  /** The board's button on `line`, for the control socket's press/release/click. */
  buttonOn(line: number): Button | undefined {
    return this.buttons.get(line);
  }

  attachButton(line: number, button: Button | null): void {
    if (button) this.buttons.set(line, button);
    else this.buttons.delete(line);
  }

  /** What drives the line, or undefined when it is free to set by hand. */
  driverOf(line: number): string | undefined {
    return this.drivenBy.get(line);
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
