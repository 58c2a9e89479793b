// A user peripheral's thread: loads the module and gives it a PeripheralIo whose every call is a
// message to the board (src/board/user-peripheral.ts). Whatever the module does here — throw, loop
// forever, exhaust its heap — stays in this thread; the board stops the thread and keeps running.
import { parentPort, workerData } from 'node:worker_threads';
import type { Level } from '../device/line-backend.ts';
import type { FromWorker, ToWorker, WorkerInit } from './peripheral-messages.ts';
import type { PeripheralIo } from './peripheral-io.ts';

const port = parentPort;
if (!port) throw new Error('peripheral-worker runs as a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);
const startNs = BigInt(init.startNs);
const levels = { ...init.levels };
const handlers = new Map<string, Array<(level: Level, atMs: number) => void>>();
const timers = new Map<number, { fn: () => void; repeat: boolean }>();
let nextId = 0;

const role = (r: unknown): string => {
  if (typeof r !== 'string' || !init.roles.includes(r))
    throw new RangeError(`${init.name}: no line ${JSON.stringify(r)} (its lines: ${init.roles.join(', ')})`);
  return r;
};

const io: PeripheralIo = {
  name: init.name,
  now: () => Number(process.hrtime.bigint() - startNs) / 1e6,
  set: (r, level) => post({ t: 'set', role: role(r), level }),
  level: (r) => levels[role(r)],
  onLevel: (r, fn) => {
    const list = handlers.get(role(r)) ?? [];
    list.push(fn);
    handlers.set(r, list);
  },
  after: (ms, fn) => {
    const id = nextId++;
    timers.set(id, { fn, repeat: false });
    post({ t: 'after', id, ms });
    return { cancel: () => timers.delete(id) && post({ t: 'cancel', id }) };
  },
  every: (ms, fn, firstAtMs) => {
    const id = nextId++;
    timers.set(id, { fn, repeat: true });
    post({ t: 'every', id, ms, firstAtMs: firstAtMs ?? null });
    return { cancel: () => timers.delete(id) && post({ t: 'cancel', id }) };
  },
  log: (message) => post({ t: 'log', message: String(message) }),
};

const fail = (e: unknown) =>
  post({ t: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });

port.on('message', (m: ToWorker) => {
  try {
    if (m.t === 'level') {
      levels[m.role] = m.level;
      for (const fn of handlers.get(m.role) ?? []) fn(m.level, m.atMs);
    } else {
      const t = timers.get(m.id);
      if (t && !t.repeat) timers.delete(m.id);
      t?.fn();
    }
  } catch (e) {
    fail(e);
  }
  post({ t: 'idle', seq: m.seq });
});

try {
  const mod = (await import(init.moduleUrl)) as { default?: unknown };
  if (typeof mod.default !== 'function')
    throw new TypeError(`${init.moduleUrl}: expected a default export (io, options) => void`);
  await (mod.default as (io: PeripheralIo, options: unknown) => unknown)(io, init.options);
  post({ t: 'ready' });
} catch (e) {
  fail(e);
}
