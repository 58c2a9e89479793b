import type { Level } from '../device/line-backend.ts';
import type { Scheduled } from './board-scheduler.ts';

/**
 * What a peripheral sees of the board: its own lines by role ("line", "a", "req", …), board time,
 * and timers on board time (absolute deadlines). Built-in peripherals and user modules get the same
 * API; a user module gets it in a worker thread, where every call is a message to the board.
 */
export interface PeripheralIo {
  /** The peripheral's name (from the board file, or its type and index). */
  readonly name: string;
  /** Milliseconds since the board started (fractional, monotonic). */
  now(): number;
  /**
   * Drives the line: 0 or 1, or null to let go (the line then reads its pull, or what else drives
   * it). On a shared open-drain net, 0 pulls the net low and 1 lets go, like null.
   */
  set(role: string, level: Level | null): void;
  /** The line's level as the board sees it: what the guest drives on an output, else the net's level. */
  level(role: string): Level;
  /** Calls `fn` on every change of `level(role)`, with board time. */
  onLevel(role: string, fn: (level: Level, atMs: number) => void): void;
  /** Runs `fn` once, `ms` milliseconds from now. */
  after(ms: number, fn: () => void): Scheduled;
  /**
   * Runs `fn` every `ms` milliseconds by absolute deadline (no drift): first at board time
   * `firstAtMs` (default now + ms), then firstAtMs + k·ms.
   */
  every(ms: number, fn: () => void, firstAtMs?: number): Scheduled;
  /** A log line from the peripheral (the daemon's log, tagged with its name). */
  log(message: string): void;
}

/** A peripheral the board runs: started once with its io, stopped when the board closes. */
export interface Peripheral {
  readonly type: string;
  start(io: PeripheralIo): void;
  stop(): void;
}
