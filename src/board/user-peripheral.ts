import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Scheduled } from './board-scheduler.ts';
import type { ModuleSpec } from './board-schema.ts';
import { decodeFromWorker, type ToWorker, type WorkerInit } from './peripheral-messages.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';

// The worker is this file's sibling: TypeScript through tsx in the repository, compiled JS in dist/.
const fromSource = import.meta.url.endsWith('.ts');
const WORKER = new URL(`./peripheral-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);

const DEFAULT_WATCHDOG_MS = 1000;
/** Loading a module (imports, top-level code) may take longer than answering an event. */
const MIN_LOAD_MS = 5000;

type Log = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, string | number | boolean | null | undefined>,
) => void;

/**
 * A peripheral from a user's ES module, run in a worker thread. A synchronous infinite loop cannot be
 * interrupted from inside a thread, and `vm` timeouts only cover synchronous code the board calls
 * directly; a worker can always be terminated from outside. So every event the board sends is
 * acknowledged, and a module that leaves one unacknowledged for `watchdogMs` (or does not finish
 * loading) is terminated; one that throws, sends a bad message or exhausts its heap is terminated
 * too. Each is logged, its lines are let go, and the board and the other peripherals keep running.
 */
export class UserPeripheral implements Peripheral {
  readonly type = 'module';
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  /** Why the module was stopped, once it was. */
  stoppedBecause: string | null = null;
  private worker: Worker | null = null;
  private readonly timers = new Map<number, Scheduled>();
  private seq = 0;
  private loaded = false;
  private acked = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  private resolveExited!: () => void;
  private readonly watchdogMs: number;

  constructor(
    private readonly spec: ModuleSpec,
    private readonly path: string,
    private readonly log: Log,
  ) {
    this.watchdogMs = spec.watchdogMs ?? DEFAULT_WATCHDOG_MS;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  start(io: PeripheralIo): void {
    const roles = Object.keys(this.spec.lines);
    const init: WorkerInit = {
      moduleUrl: pathToFileURL(this.path).href,
      name: io.name,
      roles,
      options: this.spec.options ?? {},
      startNs: (process.hrtime.bigint() - BigInt(Math.round(io.now() * 1e6))).toString(),
      levels: Object.fromEntries(roles.map((r) => [r, io.level(r)])),
    };
    // From source the worker is TypeScript: a worker's entry file is loaded before its --import
    // hooks (tsx) are in place, so the entry is a one-line script that imports the worker file.
    const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER.href)}); })`;
    const w = new Worker(fromSource ? entry : WORKER, {
      eval: fromSource,
      // Not the test runner's flags (under node --test a worker would wait to report tests).
      execArgv: process.execArgv.filter((a) => !a.startsWith('--test')),
      workerData: init,
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
      stdout: false,
      stderr: false,
    });
    this.worker = w;
    this.arm(Math.max(MIN_LOAD_MS, this.watchdogMs), 'did not finish loading');
    w.on('message', (raw: unknown) => {
      try {
        this.handle(io, decodeFromWorker(raw, roles));
      } catch (e) {
        this.kill(`sent a bad message: ${(e as Error).message}`);
      }
    });
    w.on('error', (e) => this.kill(`threw: ${e.message}`));
    w.on('exit', () => {
      this.disarm();
      for (const t of this.timers.values()) t.cancel();
      this.timers.clear();
      this.worker = null;
      this.rejectReady(new Error(`module ${this.spec.module} stopped: ${this.stoppedBecause ?? 'exited'}`));
      this.resolveExited();
    });
    for (const r of roles)
      io.onLevel(r, (level, atMs) => this.send({ t: 'level', seq: 0, role: r, level, atMs }));
  }

  stop(): void {
    this.kill(null);
  }

  private handle(io: PeripheralIo, m: ReturnType<typeof decodeFromWorker>): void {
    switch (m.t) {
      case 'ready':
        this.loaded = true;
        this.disarm();
        if (this.acked !== this.seq)
          this.arm(
            this.watchdogMs,
            `did not answer within ${this.watchdogMs} ms (a loop that never returns?)`,
          );
        this.resolveReady();
        return;
      case 'idle':
        this.acked = Math.max(this.acked, m.seq);
        if (this.loaded && this.acked === this.seq) this.disarm();
        return;
      case 'set':
        io.set(m.role, m.level);
        return;
      case 'after':
        this.timers.set(
          m.id,
          io.after(m.ms, () => {
            this.timers.delete(m.id);
            this.send({ t: 'timer', seq: 0, id: m.id });
          }),
        );
        return;
      case 'every':
        this.timers.set(
          m.id,
          io.every(m.ms, () => this.send({ t: 'timer', seq: 0, id: m.id }), m.firstAtMs ?? undefined),
        );
        return;
      case 'cancel':
        this.timers.get(m.id)?.cancel();
        this.timers.delete(m.id);
        return;
      case 'log':
        this.log('info', m.message);
        return;
      case 'error':
        this.kill(`threw: ${m.message.split('\n')[0]}`);
        return;
    }
  }

  private send(m: ToWorker): void {
    const w = this.worker;
    if (!w) return;
    m.seq = ++this.seq;
    w.postMessage(m);
    if (!this.watchdog)
      this.arm(this.watchdogMs, `did not answer within ${this.watchdogMs} ms (a loop that never returns?)`);
  }

  private arm(ms: number, why: string): void {
    this.disarm();
    this.watchdog = setTimeout(() => this.kill(why), ms);
    this.watchdog.unref();
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private kill(why: string | null): void {
    const w = this.worker;
    if (!w || this.stoppedBecause !== null) return;
    this.stoppedBecause = why ?? 'stopped';
    this.disarm();
    if (why !== null) this.log('error', `peripheral module stopped: it ${why}`, { module: this.spec.module });
    void w.terminate();
  }
}
