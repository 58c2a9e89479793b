import { readFileSync } from 'node:fs';
import { ServedDevice, type DeviceConfig } from '../daemon/served-device.ts';
import { controlPathFor } from '../control/control-protocol.ts';
import { PlacementError, placeDevices } from '../daemon/worker-placement.ts';
import { StreamLogger, isLogLevel, type LogLevel, type Logger } from '../log/logger.ts';
import { defineCommand } from './command.ts';
import { plainDeviceFlags } from './serve-flags.ts';
import type { SurfaceDevice, SurfaceOptions } from './serve-surfaces.ts';
import { UsageError } from './usage-error.ts';

export interface ServeOptions extends SurfaceOptions {
  socket?: string;
  fd?: string;
  lines?: string;
  names?: string;
  chip?: string;
  'chip-lines'?: string;
  config?: string;
  'socket-mode'?: string;
  control?: string;
  'log-level'?: string;
  'log-format'?: string;
  'print-capabilities'?: boolean;
  'poll-us'?: string;
  workers?: string;
}

const configError = (e: unknown): never => {
  throw e instanceof Error && e.name === 'ConfigError' ? new UsageError(e.message) : e;
};

// Loaded only when needed (a --config file, a chip, flags plainDeviceFlags does not take; the
// surfaces, board and MQTT with their options), so a plain `serve --socket` stays small in memory.
const configSchema = () => import('../daemon/serve-config.ts');

/** `--poll-us N`: 0..1000000 µs of busy polling per ring (0: off). */
export function pollUsOf(s: string | undefined): number {
  if (s === undefined) return 0;
  const n = /^[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!(n <= 1_000_000)) throw new UsageError(`--poll-us must be 0..1000000 microseconds (got ${s})`);
  return n;
}

/** `--workers N` (0..64), else the --config file's `"workers"`, else 0: every device on the main thread. */
export async function workersOf(o: ServeOptions): Promise<number> {
  if (o.workers !== undefined) {
    const { MAX_WORKERS } = await configSchema();
    const n = /^[0-9]+$/.test(o.workers) ? Number(o.workers) : NaN;
    if (!(n <= MAX_WORKERS)) throw new UsageError(`--workers must be 0..${MAX_WORKERS} (got ${o.workers})`);
    return n;
  }
  return o.config ? ((await configSchema()).parseConfigWorkers(readFileSync(o.config, 'utf8')) ?? 0) : 0;
}

/** The devices to serve, from --config FILE or the flags; every value checked (src/daemon/serve-config.ts). */
export async function deviceConfigs(o: ServeOptions): Promise<DeviceConfig[]> {
  const mode = o['socket-mode'];
  if (o.config) {
    if (o.socket || o.fd || o.lines || o.names || o.control || o.chip || o['chip-lines'])
      throw new UsageError('--config goes alone, without --socket/--fd/--lines/--names/--chip/--control');
    let text: string;
    try {
      text = readFileSync(o.config, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read config ${o.config}: ${(e as Error).message}`);
    }
    const { parseConfigFile, parseDeviceFlags } = await configSchema();
    try {
      const defaultMode = mode === undefined ? undefined : parseDeviceFlags({ lines: '1', socketMode: mode });
      return parseConfigFile(o.config, text, defaultMode?.socketMode);
    } catch (e) {
      return configError(e);
    }
  }
  if (!o.socket === !o.fd) throw new UsageError('give exactly one of --socket PATH, --fd N or --config FILE');
  const fd = o.fd === undefined ? undefined : /^[0-9]+$/.test(o.fd) ? Number(o.fd) : NaN;
  if (Number.isNaN(fd)) throw new UsageError(`--fd ${o.fd} is not a file descriptor`);
  if (o['chip-lines'] !== undefined && !o.chip) throw new UsageError('--chip-lines needs --chip PATH');
  if (o.chip && (o.lines || o.names))
    throw new UsageError(
      "--chip serves the chip's own lines and names: select them with --chip-lines, not --lines/--names",
    );
  try {
    const given = { lines: o.lines ?? '8', names: o.names, socketMode: mode };
    const flags = plainDeviceFlags(given) ?? (await configSchema()).parseDeviceFlags(given);
    const chip = o.chip
      ? {
          chip: {
            path: o.chip,
            lines:
              o['chip-lines'] === undefined
                ? undefined
                : (await configSchema()).parseChipLines(o['chip-lines']),
          },
        }
      : {};
    return [{ socket: o.socket, fd, control: o.control, ...flags, ...chip }];
  } catch (e) {
    return configError(e);
  }
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
    'vgpio serve (--socket PATH | --fd N [--control PATH] | --config FILE) [--lines N] [--names a,b,...] [--chip /dev/gpiochipN [--chip-lines 0-7,12]] [--socket-mode 0600] [--workers N] [--poll-us N]',
  help: `Serves simulated GPIO chips to vhost-user front-ends (QEMU), in the foreground until SIGTERM/SIGINT.

Options:
  --socket PATH          listen at exactly PATH (--socket-path is accepted too)
  --fd N                 use an inherited socket: listening, or connected (then exit when it closes)
  --control PATH         control socket path (default PATH.ctl; none with --fd unless given)
  --lines N              line count, 1..65535 (default 8)
  --names a,b,...        line names, 7-bit ASCII, unique; no more names than lines
  --chip /dev/gpiochipN  serve a host GPIO chip's real lines (names from the chip) instead
  --chip-lines 0-7,12    only these chip offsets, in this order (guest line i = i-th offset)
  --socket-mode MODE     octal mode of the device and control sockets (default 0600)
  --config FILE          several devices from one JSON file (README: --config)
  --log-level LEVEL      debug, info, warn or error (default info)
  --log-format FORMAT    text or json, on stderr (default text)
  --trace FILE.vcd       record every line to a VCD trace (levels, armed windows, interrupts)
  --poll-us N            busy-poll each ring for N µs after its last request, kicks suppressed
                         (default 0: off; pays only with the daemon on a CPU of its own, docs/performance.md)
  --workers N            serve the devices from N worker threads (round-robin, or a device's "worker" in
                         --config; default 0: all on the main thread). Devices on a board, and every
                         device of a file with an mqtt section, stay on the main thread (logged)
  --http HOST:PORT       serve the live dashboard (loopback only unless --http-token is given)
  --http-token TOKEN     required for a non-loopback --http; every request must carry it
  --print-capabilities   print {"type":"gpio"} and exit`,
  options: {
    socket: { type: 'string' },
    'socket-path': { type: 'string' },
    fd: { type: 'string' },
    lines: { type: 'string' },
    names: { type: 'string' },
    chip: { type: 'string' },
    'chip-lines': { type: 'string' },
    config: { type: 'string' },
    'socket-mode': { type: 'string' },
    control: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'print-capabilities': { type: 'boolean' },
    trace: { type: 'string' },
    'poll-us': { type: 'string' },
    workers: { type: 'string' },
    http: { type: 'string' },
    'http-token': { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  run: (values) => serve({ ...values, socket: values.socket ?? values['socket-path'] }),
});

/** `vgpio serve`: runs in the foreground until SIGTERM/SIGINT (no daemonizing, per vhost-user.rst). */
export async function serve(o: ServeOptions): Promise<number> {
  const log = makeLogger(o);
  const pollUs = pollUsOf(o['poll-us']);
  const configs = (await deviceConfigs(o)).map((c) => (pollUs === 0 ? c : { ...c, pollUs }));
  const workers = await workersOf(o);
  const surfacing =
    o.http !== undefined || o['http-token'] !== undefined || o.trace !== undefined
      ? await import('./serve-surfaces.ts')
      : null;
  surfacing?.checkSurfaces(o);
  const board = o.config ? (await import('./serve-board.ts')).boardFor(o.config, configs, log) : null;
  let placement;
  try {
    placement = placeDevices(configs, workers, { mqtt: o.config ? hasMqtt(o.config) : false });
  } catch (e) {
    throw e instanceof PlacementError ? new UsageError(`${o.config ?? '--workers'}: ${e.message}`) : e;
  }
  const inWorkers = placement.groups.some((g) => g.length > 0);
  const devices: ServedDevice[] = [];
  let pool: { close(): Promise<void> } | null = null;
  let surfaces: { close(): Promise<void> } | null = null;
  let mqtt: { close(): Promise<void> } | null = null;
  let exiting = false;
  const shutdown = async (why: string, code: number) => {
    if (exiting) return;
    exiting = true;
    log.log('info', 'shutting down', { reason: why });
    await mqtt?.close().catch(() => {});
    await surfaces?.close().catch(() => {});
    await board?.close().catch(() => {});
    for (const d of devices) await d.close().catch(() => {});
    await pool?.close().catch(() => {});
    process.exit(code);
  };
  const deviceLog = (c: DeviceConfig) => (c.socket ? log.child({ socket: c.socket }) : log);
  const onFrontendGone = (reason: string) => {
    void shutdown(`front-end on the given fd went away: ${reason}`, 0);
  };
  try {
    if (workers > 0)
      for (const { device, reason } of placement.main)
        log.log('info', 'device stays on the main thread', {
          socket: configs[device].socket ?? `fd:${configs[device].fd}`,
          reason,
        });
    const surfaceDevices: SurfaceDevice[] = [];
    for (const { device } of placement.main) {
      const c = configs[device];
      const d = await ServedDevice.start(c, deviceLog(c), onFrontendGone);
      devices.push(d);
      surfaceDevices[device] = { config: c, local: d };
    }
    if (inWorkers) {
      const { DeviceWorkerPool } = await import('../daemon/worker-pool.ts');
      pool = await DeviceWorkerPool.start({
        groups: placement.groups.map((g) => g.map((i) => configs[i])),
        log,
        logLevel: logLevelOf(o),
        deviceLog,
        onFrontendGone,
      });
      for (const g of placement.groups)
        for (const i of g) {
          const c = configs[i];
          const controlPath = c.control ?? (c.socket ? controlPathFor(c.socket) : undefined);
          surfaceDevices[i] = { config: c, local: null, controlPath };
        }
    }
    await board?.start();
    surfaces = surfacing ? await surfacing.startSurfaces(o, inWorkers ? surfaceDevices : devices, log) : null;
    mqtt = o.config
      ? await (await import('../mqtt/served-mqtt.ts')).startMqttFor(o.config, devices, log)
      : null;
  } catch (e) {
    log.log('error', 'cannot start', { error: (e as Error).message });
    await surfaces?.close().catch(() => {});
    await board?.close().catch(() => {});
    for (const d of devices) await d.close().catch(() => {});
    await pool?.close().catch(() => {});
    return 1;
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  log.log(
    'info',
    'serving',
    inWorkers
      ? {
          devices: configs.length,
          workers: placement.groups.filter((g) => g.length).length,
          pid: process.pid,
        }
      : { devices: devices.length, pid: process.pid },
  );
  return new Promise<number>(() => {}); // runs until a signal
}

const logLevelOf = (o: { 'log-level'?: string }): LogLevel => {
  const level = o['log-level'] ?? 'info';
  return isLogLevel(level) ? level : 'info';
};

/** Whether a --config file has an mqtt section (its bridge reaches devices of the main thread only). */
const hasMqtt = (file: string): boolean =>
  (JSON.parse(readFileSync(file, 'utf8')) as { mqtt?: unknown }).mqtt !== undefined;
