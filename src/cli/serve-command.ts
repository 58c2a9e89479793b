import { readFileSync } from 'node:fs';
import { ServedDevice, type DeviceConfig } from '../daemon/served-device.ts';
import { StreamLogger, isLogLevel, type Logger } from '../log/logger.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

export interface ServeOptions {
  socket?: string;
  fd?: string;
  lines?: string;
  names?: string;
  config?: string;
  'socket-mode'?: string;
  control?: string;
  'log-level'?: string;
  'log-format'?: string;
  'print-capabilities'?: boolean;
}

/** The JSON accepted by --config. */
interface ConfigFile {
  devices: Array<{ socket: string; lines: number; names?: string[]; socketMode?: string; control?: string }>;
}

const parseMode = (s: string): number => {
  if (!/^0?[0-7]{3}$/.test(s)) throw new UsageError(`socket mode ${s} is not an octal mode like 0600`);
  return parseInt(s, 8);
};

const parseLines = (s: string | number | undefined, where: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 0xffff)
    throw new UsageError(`${where}: lines must be 1..65535, not ${s}`);
  return n;
};

export function deviceConfigs(o: ServeOptions): DeviceConfig[] {
  if (o.config) {
    if (o.socket || o.fd || o.lines || o.names)
      throw new UsageError('--config goes alone, without --socket/--fd/--lines/--names');
    let parsed: ConfigFile;
    try {
      parsed = JSON.parse(readFileSync(o.config, 'utf8')) as ConfigFile;
    } catch (e) {
      throw new UsageError(`cannot read config ${o.config}: ${(e as Error).message}`);
    }
    if (!Array.isArray(parsed.devices) || parsed.devices.length === 0)
      throw new UsageError(`${o.config}: "devices" must be a non-empty array`);
    const sockets = new Set<string>();
    return parsed.devices.map((d, i) => {
      if (typeof d.socket !== 'string' || d.socket === '')
        throw new UsageError(`${o.config}: devices[${i}].socket missing`);
      if (sockets.has(d.socket)) throw new UsageError(`${o.config}: socket ${d.socket} appears twice`);
      sockets.add(d.socket);
      return {
        socket: d.socket,
        lines: parseLines(d.lines, `${o.config}: devices[${i}]`),
        names: d.names,
        socketMode: d.socketMode
          ? parseMode(d.socketMode)
          : o['socket-mode']
            ? parseMode(o['socket-mode'])
            : undefined,
        control: d.control,
      };
    });
  }
  if (!o.socket === !o.fd) throw new UsageError('give exactly one of --socket PATH, --fd N or --config FILE');
  const fd = o.fd === undefined ? undefined : Number(o.fd);
  if (fd !== undefined && (!Number.isInteger(fd) || fd < 0))
    throw new UsageError(`--fd ${o.fd} is not a file descriptor`);
  return [
    {
      socket: o.socket,
      fd,
      lines: parseLines(o.lines ?? '8', '--lines'),
      names: o.names ? o.names.split(',') : undefined,
      socketMode: o['socket-mode'] ? parseMode(o['socket-mode']) : undefined,
      control: o.control,
    },
  ];
}

export function makeLogger(o: { 'log-level'?: string; 'log-format'?: string }): Logger {
  const level = o['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level must be debug, info, warn or error`);
  const format = o['log-format'] ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError('--log-format must be text or json');
  return new StreamLogger({ level, format });
}

export const command = defineCommand({
  usage:
    'vgpio serve (--socket PATH | --fd N --control PATH | --config FILE) [--lines N] [--names a,b,...] [--socket-mode 0600]',
  help: `Serves simulated GPIO chips to vhost-user front-ends (QEMU), in the foreground until SIGTERM/SIGINT.

Options:
  --socket PATH          listen at exactly PATH (--socket-path is accepted too)
  --fd N                 use an inherited socket: listening, or connected (then exit when it closes)
  --control PATH         control socket path (default PATH.ctl; required with --fd)
  --lines N              line count, 1..65535 (default 8)
  --names a,b,...        line names, 7-bit ASCII, unique; no more names than lines
  --socket-mode MODE     octal mode of the device and control sockets (default 0600)
  --config FILE          several devices from one JSON file (README: --config)
  --log-level LEVEL      debug, info, warn or error (default info)
  --log-format FORMAT    text or json, on stderr (default text)
  --print-capabilities   print {"type":"gpio"} and exit`,
  options: {
    socket: { type: 'string' },
    'socket-path': { type: 'string' },
    fd: { type: 'string' },
    lines: { type: 'string' },
    names: { type: 'string' },
    config: { type: 'string' },
    'socket-mode': { type: 'string' },
    control: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'print-capabilities': { type: 'boolean' },
  },
  positionals: { min: 0, max: 0 },
  run: (values) => serve({ ...values, socket: values.socket ?? values['socket-path'] }),
});

/** `vgpio serve`: runs in the foreground until SIGTERM/SIGINT (no daemonizing, per vhost-user.rst). */
export async function serve(o: ServeOptions): Promise<number> {
  const log = makeLogger(o);
  const configs = deviceConfigs(o);
  const devices: ServedDevice[] = [];
  let exiting = false;
  const shutdown = async (why: string, code: number) => {
    if (exiting) return;
    exiting = true;
    log.log('info', 'shutting down', { reason: why });
    for (const d of devices) await d.close().catch(() => {});
    process.exit(code);
  };
  try {
    for (const c of configs) {
      devices.push(
        await ServedDevice.start(c, c.socket ? log.child({ socket: c.socket }) : log, (reason) => {
          void shutdown(`front-end on the given fd went away: ${reason}`, 0);
        }),
      );
    }
  } catch (e) {
    log.log('error', 'cannot start', { error: (e as Error).message });
    for (const d of devices) await d.close().catch(() => {});
    return 1;
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  log.log('info', 'serving', { devices: devices.length, pid: process.pid });
  return new Promise<number>(() => {}); // runs until a signal
}
