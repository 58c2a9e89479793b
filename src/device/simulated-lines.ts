import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Direction, type IrqType } from '../protocol/constants.ts';
import type { Level, LevelChange, LineBackend } from './line-backend.ts';

interface Wire {
  direction: Direction;
  /** Level the outside world applies (meaningful while the line is not an output). */
  external: Level;
  /** Level the guest drives (meaningful while the line is an output). */
  driven: Level;
  /** The sensed level last reported to change listeners (a nested change is reported once). */
  reported: Level;
}

export interface SequenceStep {
  level: Level;
  /** Wait this long before applying the level. */
  afterMs?: number;
}

export interface SimulatedLinesEvents {
  output: [line: number, level: Level];
  direction: [line: number, direction: Direction];
}

/**
 * Simulated wires: a program drives what the guest senses on inputs and reads what the guest
 * drives on outputs. An output senses its own driven level, as a real pin does.
 */
export class SimulatedLines extends EventEmitter<SimulatedLinesEvents> implements LineBackend {
  readonly ngpio: number;
  readonly names: readonly string[];
  private readonly wires: Wire[];
  private readonly changeListeners: Array<(c: LevelChange) => void> = [];

  constructor(ngpio: number, names: readonly string[] = []) {
    super();
    if (!Number.isInteger(ngpio) || ngpio < 1 || ngpio > 0xffff)
      throw new RangeError(`ngpio ${ngpio} out of range`);
    this.ngpio = ngpio;
    this.names = Array.from({ length: ngpio }, (_, i) => names[i] ?? '');
    this.wires = Array.from({ length: ngpio }, () => ({
      direction: Direction.NONE,
      external: 0,
      driven: 0,
      reported: 0,
    }));
  }

  // --- the guest's side (LineBackend) ---

  setDirection(line: number, direction: Direction, value: Level): void {
    const w = this.wire(line);
    w.direction = direction;
    if (direction === Direction.OUT) w.driven = value;
    this.emit('direction', line, direction);
    if (direction === Direction.OUT) this.emit('output', line, value);
    this.report(line);
  }

  drive(line: number, value: Level): void {
    const w = this.wire(line);
    w.driven = value;
    if (w.direction === Direction.OUT) this.emit('output', line, value);
    this.report(line);
  }

  sense(line: number): Level {
    const w = this.wire(line);
    return w.direction === Direction.OUT ? w.driven : w.external;
  }

  watch(_line: number, _type: IrqType): void {
    // Every change is reported anyway; the device model filters by IRQ type.
  }

  onChange(listener: (change: LevelChange) => void): void {
    this.changeListeners.push(listener);
  }

  close(): void {
    this.changeListeners.length = 0;
    this.removeAllListeners();
  }

  // --- the outside world's side ---

  /** Apply a level to the line from outside (what an input senses). */
  setInput(line: number, level: Level): void {
    this.wire(line).external = level;
    this.report(line);
  }

  /** The level applied from outside. */
  input(line: number): Level {
    return this.wire(line).external;
  }

  /** The level the guest drives, or null when the line is not an output. */
  output(line: number): Level | null {
    const w = this.wire(line);
    return w.direction === Direction.OUT ? w.driven : null;
  }

  direction(line: number): Direction {
    return this.wire(line).direction;
  }

  /** Drive the opposite level for widthMs, then return (two edges). */
  async pulse(line: number, widthMs = 1): Promise<void> {
    const rest = this.input(line);
    await this.sequence(line, [{ level: rest === 0 ? 1 : 0 }, { level: rest, afterMs: widthMs }]);
  }

  /** Apply levels one after another with the given delays. */
  async sequence(line: number, steps: readonly SequenceStep[]): Promise<void> {
    for (const s of steps) {
      if (s.afterMs) await sleep(s.afterMs);
      this.setInput(line, s.level);
    }
  }

  /**
   * Reports the sensed level if it changed. A subclass whose `sense` reads something else (an
   * open-drain net, src/board/board-lines.ts) may change it again from an 'output' listener: the
   * inner call reports, the outer one then finds nothing new.
   */
  private report(line: number): void {
    const w = this.wire(line);
    const level = this.sense(line);
    if (level === w.reported) return;
    w.reported = level;
    const change = { line, level, timestampNs: process.hrtime.bigint() };
    for (const l of this.changeListeners) l(change);
  }

  private wire(line: number): Wire {
    const w = this.wires[line];
    if (!w) throw new RangeError(`line ${line} out of range (0..${this.ngpio - 1})`);
    return w;
  }
}
