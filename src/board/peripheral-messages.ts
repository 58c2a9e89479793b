// The messages between the board and a user peripheral's worker (src/board/user-peripheral.ts,
// src/board/peripheral-worker.ts). Structured-cloned, never shared; the board checks every field of
// what a worker sends, as it checks any untrusted input.
import type { Level } from '../device/line-backend.ts';

/** Given to the worker at start (workerData). */
export interface WorkerInit {
  moduleUrl: string;
  name: string;
  roles: string[];
  options: unknown;
  /** The board's epoch on the monotonic clock (ns, decimal), so io.now() agrees across threads. */
  startNs: string;
  levels: Record<string, Level>;
}

/** Board → worker. Each carries a sequence number the worker acknowledges with `idle`. */
export type ToWorker =
  | { t: 'level'; seq: number; role: string; level: Level; atMs: number }
  | { t: 'timer'; seq: number; id: number };

/** Worker → board. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'idle'; seq: number }
  | { t: 'set'; role: string; level: Level | null }
  | { t: 'after'; id: number; ms: number }
  | { t: 'every'; id: number; ms: number; firstAtMs: number | null }
  | { t: 'cancel'; id: number }
  | { t: 'log'; message: string }
  | { t: 'error'; message: string };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isMs = (v: unknown): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 86_400_000;

/** Checks a worker's message; throws naming the field at fault. */
export function decodeFromWorker(m: unknown, roles: readonly string[]): FromWorker {
  if (!isRecord(m)) throw new TypeError('a worker message is an object');
  const bad = (field: string) =>
    new TypeError(
      `worker message "${String(m.t)}": bad "${field}" (${JSON.stringify(m[field]) ?? 'missing'})`,
    );
  switch (m.t) {
    case 'ready':
      return { t: 'ready' };
    case 'idle':
      if (!isId(m.seq)) throw bad('seq');
      return { t: 'idle', seq: m.seq };
    case 'set':
      if (typeof m.role !== 'string' || !roles.includes(m.role))
        throw new TypeError(`set: no line "${String(m.role)}" (the module's lines: ${roles.join(', ')})`);
      if (m.level !== 0 && m.level !== 1 && m.level !== null)
        throw new TypeError(
          `set("${m.role}", ${JSON.stringify(m.level) ?? 'undefined'}): expected 0, 1 or null`,
        );
      return { t: 'set', role: m.role, level: m.level };
    case 'after':
      if (!isId(m.id)) throw bad('id');
      if (!isMs(m.ms)) throw new TypeError(`after(${JSON.stringify(m.ms)}): expected milliseconds ≥ 0`);
      return { t: 'after', id: m.id, ms: m.ms };
    case 'every':
      if (!isId(m.id)) throw bad('id');
      if (!isMs(m.ms) || m.ms === 0)
        throw new TypeError(`every(${JSON.stringify(m.ms)}): expected milliseconds > 0`);
      if (m.firstAtMs !== null && !isMs(m.firstAtMs)) throw bad('firstAtMs');
      return { t: 'every', id: m.id, ms: m.ms, firstAtMs: m.firstAtMs };
    case 'cancel':
      if (!isId(m.id)) throw bad('id');
      return { t: 'cancel', id: m.id };
    case 'log':
      return { t: 'log', message: String(m.message).slice(0, 4096) };
    case 'error':
      return { t: 'error', message: String(m.message).slice(0, 4096) };
    default:
      throw new TypeError(`unknown worker message ${JSON.stringify(m.t)}`);
  }
}
