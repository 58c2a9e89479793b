import type { ControlEvent, LineStatus } from '../control/control-protocol.ts';
import type { DeviceConfig, ServedDevice } from '../daemon/served-device.ts';
import type { WorkerDeviceLink } from '../daemon/worker-device-link.ts';
import type { Logger } from '../log/logger.ts';
import { httpOptions } from './dashboard-command.ts';
import { scopeFor } from './record-command.ts';

export interface SurfaceOptions {
  trace?: string;
  http?: string;
  'http-token'?: string;
}

/**
 * A device the surfaces show: served on this thread (`local`), or by a worker thread of this
 * daemon (`serve --workers N`), then reached through its control socket at `controlPath`.
 */
export type SurfaceDevice =
  | { config: DeviceConfig; local: ServedDevice }
  | { config: DeviceConfig; local: null; controlPath: string | undefined };

/** Checks --trace / --http / --http-token before anything starts (usage errors). */
export function checkSurfaces(o: SurfaceOptions): void {
  httpOptions(o.http, o['http-token']);
}

const label = (c: DeviceConfig) => scopeFor(c.socket ?? `fd${c.fd}`);

const noControl = () =>
  new Error('--http needs a control endpoint for every device (give --control PATH with --fd)');

/** `serve --trace FILE.vcd` and `serve --http HOST:PORT`, over the devices just started. */
export async function startSurfaces(
  o: SurfaceOptions,
  served: readonly ServedDevice[] | readonly SurfaceDevice[],
  log: Logger,
): Promise<{ close(): Promise<void> }> {
  const devices: SurfaceDevice[] = served.map((d) => ('local' in d ? d : { config: d.config, local: d }));
  const locals = devices.every((d) => d.local !== null) ? devices.map((d) => d.local as ServedDevice) : null;
  const closers: Array<() => void | Promise<void>> = [];
  const links = new Map<number, WorkerDeviceLink>();
  /** One link per device in a worker, shared by the trace and the dashboard. */
  const linkOf = async (i: number, d: SurfaceDevice & { local: null }) => {
    let link = links.get(i);
    if (!link) {
      if (!d.controlPath) throw noControl();
      const { WorkerDeviceLink } = await import('../daemon/worker-device-link.ts');
      link = await WorkerDeviceLink.connect(d.config.socket ?? d.controlPath, d.controlPath);
      links.set(i, link);
      const l = link;
      closers.unshift(() => l.close());
    }
    return link;
  };
  try {
    if (o.trace) {
      if (locals) {
        const { startTrace } = await import('../trace/served-trace.ts');
        const t = startTrace(
          o.trace,
          locals.map((d) => ({ scope: label(d.config), device: d.gpio })),
        );
        closers.push(() => t.close());
      } else {
        const t = await startLinkTrace(o.trace, devices, linkOf);
        closers.push(() => t.close());
      }
      log.log('info', 'tracing to a VCD file', { trace: o.trace });
    }
    const http = httpOptions(o.http, o['http-token']);
    if (http) {
      const [{ DashboardServer }, { LocalDeviceLink }] = await Promise.all([
        import('../dashboard/dashboard-server.ts'),
        import('../dashboard/local-device-link.ts'),
      ]);
      const clients = [];
      for (const [i, d] of devices.entries()) {
        if (d.local === null) {
          clients.push({ label: label(d.config), client: await linkOf(i, d) });
          continue;
        }
        const control = d.local.controlServer;
        if (!control) throw noControl();
        clients.push({ label: label(d.config), client: new LocalDeviceLink(control) });
      }
      const dash = await DashboardServer.start({ ...http, log, devices: clients });
      closers.push(() => dash.close());
    }
  } catch (e) {
    for (const c of closers.reverse()) await c();
    throw e;
  }
  return {
    close: async () => {
      for (const c of closers.reverse()) await c();
    },
  };
}

/**
 * `serve --trace` with devices in worker threads: every device in one VCD file, those of this thread
 * from their event streams, those in workers through their control sockets (as `vgpio record`).
 */
async function startLinkTrace(
  path: string,
  devices: readonly SurfaceDevice[],
  linkOf: (i: number, d: SurfaceDevice & { local: null }) => Promise<WorkerDeviceLink>,
): Promise<{ close(): void }> {
  const [{ VcdFile }, { encodeEvent }, { lineStatuses }] = await Promise.all([
    import('../trace/vcd-file.ts'),
    import('../control/control-protocol.ts'),
    import('../control/control-server.ts'),
  ]);
  let file: InstanceType<typeof VcdFile> | null = null;
  const early: Array<{ device: number; e: ControlEvent }> = [];
  const push = (device: number, e: ControlEvent) =>
    file ? file.event(device, e) : early.push({ device, e });
  const stops: Array<() => void> = [];
  const starts: Array<{ lines: LineStatus[]; timeNs: bigint }> = [];
  for (const [i, d] of devices.entries()) {
    if (d.local) {
      const gpio = d.local.gpio;
      starts.push({ lines: lineStatuses(gpio), timeNs: process.hrtime.bigint() });
      stops.push(gpio.events.subscribe((e) => push(i, encodeEvent(e))));
    } else {
      const s = await (await linkOf(i, d)).subscribe((e) => push(i, e));
      starts.push({ lines: s.status.lines, timeNs: s.timeNs });
      stops.push(s.stop);
    }
  }
  const startNs = starts.reduce((m, s) => (s.timeNs < m ? s.timeNs : m), starts[0].timeNs);
  file = new VcdFile(
    path,
    devices.map((d, i) => ({ scope: label(d.config), lines: starts[i].lines })),
    startNs,
  );
  for (const b of early) file.event(b.device, b.e);
  const f = file;
  return {
    close: () => {
      for (const s of stops) s();
      f.close();
    },
  };
}
