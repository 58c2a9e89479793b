import { ControlClient } from '../control/control-client.ts';
import { DashboardServer, isLoopbackHost, parseHostPort } from '../dashboard/dashboard-server.ts';
import { defineCommand } from './command.ts';
import { scopeFor } from './record-command.ts';
import { StreamLogger, isLogLevel, type Logger } from '../log/logger.ts';
import { UsageError } from './usage-error.ts';

/** --http / --http-token, shared with `serve`: checked before anything starts. */
export function httpOptions(
  http: string | undefined,
  token: string | undefined,
): { host: string; port: number; token?: string } | null {
  if (http === undefined) {
    if (token !== undefined) throw new UsageError('--http-token goes with --http HOST:PORT');
    return null;
  }
  let hp: { host: string; port: number };
  try {
    hp = parseHostPort(http);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const t = token ?? process.env.VGPIO_HTTP_TOKEN;
  if (!isLoopbackHost(hp.host) && !t)
    throw new UsageError(
      `--http ${http} is not a loopback address: give --http-token TOKEN (every request must then carry it)`,
    );
  return { ...hp, token: t };
}

export interface DashboardTarget {
  label: string;
  devicePath: string;
  controlPath?: string;
}

/** Connects to each device's control endpoint and serves the dashboard; `close` ends both. */
export async function startDashboard(
  http: { host: string; port: number; token?: string },
  targets: readonly DashboardTarget[],
  log: Logger,
): Promise<{ url: string; close: () => Promise<void> }> {
  const clients: ControlClient[] = [];
  try {
    for (const t of targets)
      clients.push(await ControlClient.connect(t.devicePath, { controlPath: t.controlPath }));
    const d = await DashboardServer.start({
      ...http,
      log,
      devices: clients.map((client, i) => ({ label: targets[i].label, client })),
    });
    return {
      url: d.url,
      close: async () => {
        await d.close();
        for (const c of clients) c.close();
      },
    };
  } catch (e) {
    for (const c of clients) c.close();
    throw e;
  }
}

export const command = defineCommand({
  usage: 'vgpio dashboard PATH... [--http HOST:PORT] [--http-token TOKEN]',
  help: `Serves a live web dashboard of the running devices at PATH... (through their control sockets):
every line's name, direction, level, IRQ type, armed/latched state and counters; buttons that set or
pulse inputs; a waveform of the last seconds (levels, and the armed window shaded); VCD downloads.
Updates are pushed over a WebSocket as they happen. Prints the page's URL.

Options:
  --http HOST:PORT      where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --http-token TOKEN    required for any non-loopback HOST; every request (page, socket, download)
                        must then carry it (?token=TOKEN). Also read from $VGPIO_HTTP_TOKEN.
  --log-level L, --log-format text|json`,
  options: {
    http: { type: 'string' },
    'http-token': { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
  },
  positionals: { min: 1 },
  run: async (values, paths) => {
    const http = httpOptions(values.http ?? '127.0.0.1:8080', values['http-token']);
    if (!http) throw new UsageError('--http HOST:PORT is required');
    const level = values['log-level'] ?? 'info';
    const format = values['log-format'] ?? 'text';
    if (!isLogLevel(level)) throw new UsageError('--log-level must be debug, info, warn or error');
    if (format !== 'text' && format !== 'json') throw new UsageError('--log-format must be text or json');
    const log = new StreamLogger({ level, format });
    const d = await startDashboard(
      http,
      paths.map((p) => ({ label: scopeFor(p), devicePath: p })),
      log,
    );
    process.stdout.write(`${d.url}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await d.close();
    return 0;
  },
});
