// A device worker of `vgpio serve --workers N` (worker-pool.ts): serves its devices completely —
// vhost-user server and sessions (rings, memory, kick/call eventfds, on this thread's loop through
// the addon's pollers), the device model, the lines and the control socket — and sends its log
// records to the main thread, which writes the daemon's one log stream.
import { parentPort, workerData } from 'node:worker_threads';
import type { LogFields, LogLevel, Logger } from '../log/logger.ts';
import { ServedDevice } from './served-device.ts';
import type { DeviceWorkerInit, FromDeviceWorker, ToDeviceWorker } from './worker-messages.ts';

const port = parentPort;
if (!port) throw new Error('device-worker runs as a worker thread');
const init = workerData as DeviceWorkerInit;
const post = (m: FromDeviceWorker) => port.postMessage(m);

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Posts records at or above the daemon's level; the main thread's logger formats and rate-limits them. */
class PortLogger implements Logger {
  constructor(
    private readonly device: number | null,
    private readonly fields: LogFields = {},
  ) {}

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (rank[level] < rank[init.logLevel]) return;
    const all = { ...this.fields, ...fields };
    // The server listens on the fd the main thread bound for the socket path: the main thread's
    // logger names the path, as without workers.
    const config = this.device === null ? undefined : init.devices[this.device];
    if (config?.socket && all.socket === `fd:${config.fd}`) delete all.socket;
    post({ t: 'log', device: this.device, level, msg, fields: all });
  }

  child(fields: LogFields): Logger {
    return new PortLogger(this.device, { ...this.fields, ...fields });
  }
}

const devices: ServedDevice[] = [];
let closing: Promise<void> | null = null;
const closeAll = (): Promise<void> =>
  (closing ??= (async () => {
    for (const d of devices) await d.close().catch(() => {});
  })());

// An uncaught error: close what this worker holds (sockets, eventfds, mappings) so front-ends see
// their sessions end, tell the main thread, and end; the main thread serves the devices again.
const die = (e: unknown) => {
  post({ t: 'died', error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  void closeAll().finally(() => process.exit(1));
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

port.on('message', (m: ToDeviceWorker) => {
  if (m.t === 'close')
    void closeAll().then(() => {
      post({ t: 'closed' });
      port.close();
    });
});

try {
  for (const [i, config] of init.devices.entries())
    devices.push(
      await ServedDevice.start(config, new PortLogger(i), (reason) =>
        post({ t: 'frontend-gone', device: i, reason }),
      ),
    );
  post({ t: 'ready' });
} catch (e) {
  await closeAll();
  post({ t: 'failed', error: (e as Error).message });
  port.close();
}
