import { Worker } from 'node:worker_threads';
import type { LogLevel, Logger } from '../log/logger.ts';
import { HeldSockets } from './held-sockets.ts';
import type { DeviceConfig } from './served-device.ts';
import type { DeviceWorkerInit, FromDeviceWorker, ToDeviceWorker } from './worker-messages.ts';

// The worker is this file's sibling: TypeScript through tsx in the repository, compiled JS in dist/.
const fromSource = import.meta.url.endsWith('.ts');
const WORKER = new URL(`./device-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);

/** How long a closing worker may take before it is terminated. */
const CLOSE_MS = 5000;
/** The first wait before serving a dead worker's devices again; doubled while workers keep dying young. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
/** A worker that served this long before dying restarts after RESTART_MIN_MS again. */
const HEALTHY_MS = 10_000;

export interface WorkerPoolOptions {
  /** Devices per worker (the outer index is the worker's number). */
  groups: readonly (readonly DeviceConfig[])[];
  log: Logger;
  logLevel: LogLevel;
  /** The log each device's records go to (its socket in every line, as on the main thread). */
  deviceLog: (config: DeviceConfig) => Logger;
  /** A connected --fd front-end went away (the daemon ends, as without workers). */
  onFrontendGone?: (reason: string) => void;
}

/** One worker thread and the devices it serves. */
class DeviceWorker {
  private worker: Worker | null = null;
  private stopping = false;
  private startedAt = 0;
  private restartMs = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | null = null;
  private closed: (() => void) | null = null;
  /** Times this worker's devices were served again after a worker died. */
  restarts = 0;

  constructor(
    readonly index: number,
    private readonly held: readonly HeldSockets[],
    private readonly logs: readonly Logger[],
    private readonly o: WorkerPoolOptions,
  ) {}

  get threadId(): number | null {
    return this.worker?.threadId ?? null;
  }

  private get names(): string {
    return this.held.map((h) => h.config.socket ?? `fd:${h.config.fd}`).join(',');
  }

  /** Starts the thread; resolves once every device serves, rejects if one cannot start. */
  start(): Promise<void> {
    const init: DeviceWorkerInit = {
      worker: this.index,
      logLevel: this.o.logLevel,
      devices: this.held.map((h) => h.forWorker()),
    };
    // From source the worker is TypeScript: a worker's entry file is loaded before its --import
    // hooks (tsx) are in place, so the entry is a one-line script that imports the worker file.
    const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER.href)}); })`;
    const w = new Worker(fromSource ? entry : WORKER, {
      eval: fromSource,
      // Not the test runner's flags (under node --test a worker would wait to report tests).
      execArgv: process.execArgv.filter((a) => !a.startsWith('--test')),
      workerData: init,
      name: `vgpio-devices-${this.index}`,
    });
    this.worker = w;
    this.startedAt = performance.now();
    let error: string | null = null;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      w.on('message', (m: FromDeviceWorker) => {
        switch (m.t) {
          case 'log':
            (m.device === null ? this.o.log.child({ worker: this.index }) : this.logs[m.device]).log(
              m.level,
              m.msg,
              m.fields,
            );
            return;
          case 'ready':
            ready = true;
            resolve();
            return;
          case 'failed':
            error = m.error;
            return;
          case 'died':
            error = m.error;
            return;
          case 'frontend-gone':
            this.o.onFrontendGone?.(m.reason);
            return;
          case 'closed':
            this.closed?.();
            return;
        }
      });
      w.on('error', (e) => {
        error = e.stack ?? e.message;
      });
      w.on('exit', (code) => {
        if (this.worker === w) this.worker = null;
        this.closed?.();
        if (!ready) {
          reject(new Error(error ?? `device worker ${this.index} exited (${code}) before serving`));
          return;
        }
        if (this.stopping) return;
        this.died(error ?? `exited with code ${code}`);
      });
    });
  }

  private died(error: string): void {
    const lived = performance.now() - this.startedAt;
    // A worker stopped without running its clean-up (terminated, out of memory) leaves its
    // front-end connections open: close them, so the front-ends see the session end.
    const sessions = this.held.reduce((n, h) => n + h.closeLeftSessions(), 0);
    this.restartMs = lived > HEALTHY_MS ? RESTART_MIN_MS : this.restartMs;
    this.o.log.log('error', 'device worker died: serving its devices from a new worker', {
      worker: this.index,
      devices: this.names,
      error: error.split('\n')[0],
      restartInMs: this.restartMs,
      ...(sessions ? { sessionsClosed: sessions } : {}),
    });
    if (!this.held.every((h) => h.restartable)) {
      this.o.onFrontendGone?.('the worker serving the front-end on the given fd died');
      return;
    }
    const wait = this.restartMs;
    this.restartMs = Math.min(RESTART_MAX_MS, this.restartMs * 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.start().then(
        () => {
          this.restarts++;
          this.o.log.log('info', 'device worker restarted', { worker: this.index, devices: this.names });
        },
        (e: Error) => {
          if (!this.stopping) this.died(e.message);
        },
      );
    }, wait);
  }

  /** Hard stop, as a crash would (the devices are served again by a new worker). */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  async close(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const w = this.worker;
    if (w) {
      const done = new Promise<void>((r) => (this.closed = r));
      w.postMessage({ t: 'close' } satisfies ToDeviceWorker);
      const timer = setTimeout(() => void w.terminate(), CLOSE_MS);
      await done;
      clearTimeout(timer);
      await w.terminate();
    }
    for (const h of this.held) h.close();
  }
}

/**
 * `vgpio serve --workers N`: devices served from worker threads, each worker owning its devices
 * completely (see device-worker.ts). The main thread binds their sockets, writes the log, and
 * serves a dead worker's devices again from a new one while the other workers keep serving.
 */
export class DeviceWorkerPool {
  private constructor(private readonly workers: DeviceWorker[]) {}

  static async start(o: WorkerPoolOptions): Promise<DeviceWorkerPool> {
    const workers: DeviceWorker[] = [];
    try {
      for (const [k, group] of o.groups.entries()) {
        if (group.length === 0) continue;
        const held: HeldSockets[] = [];
        try {
          for (const c of group) held.push(new HeldSockets(c));
        } catch (e) {
          for (const h of held) h.close();
          throw e;
        }
        const w = new DeviceWorker(
          k,
          held,
          group.map((c) => o.deviceLog(c)),
          o,
        );
        workers.push(w);
        await w.start();
      }
    } catch (e) {
      for (const w of workers) await w.close().catch(() => {});
      throw e;
    }
    return new DeviceWorkerPool(workers);
  }

  /** The worker threads' ids, by worker (null while one is being replaced). */
  get threadIds(): (number | null)[] {
    return this.workers.map((w) => w.threadId);
  }

  /** How often each worker's devices were served again after a worker died. */
  get restarts(): number[] {
    return this.workers.map((w) => w.restarts);
  }

  /** Stops worker `k` hard (Worker.terminate: no clean-up, as a crash); its devices are served again. */
  terminate(k: number): Promise<void> {
    const w = this.workers[k];
    if (!w) throw new RangeError(`no worker ${k}`);
    return w.terminate();
  }

  /** Closes every worker's devices, then the sockets; no socket file is left behind. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
