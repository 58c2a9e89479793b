import type { ServedDevice } from '../daemon/served-device.ts';
import type { Logger } from '../log/logger.ts';
import { httpOptions } from './dashboard-command.ts';
import { scopeFor } from './record-command.ts';

export interface SurfaceOptions {
  trace?: string;
  http?: string;
  'http-token'?: string;
}

/** Checks --trace / --http / --http-token before anything starts (usage errors). */
export function checkSurfaces(o: SurfaceOptions): void {
  httpOptions(o.http, o['http-token']);
}

/** `serve --trace FILE.vcd` and `serve --http HOST:PORT`, over the devices just started. */
export async function startSurfaces(
  o: SurfaceOptions,
  devices: readonly ServedDevice[],
  log: Logger,
): Promise<{ close(): Promise<void> }> {
  const closers: Array<() => void | Promise<void>> = [];
  const label = (d: ServedDevice) => scopeFor(d.config.socket ?? `fd${d.config.fd}`);
  try {
    if (o.trace) {
      const { startTrace } = await import('../trace/served-trace.ts');
      const t = startTrace(
        o.trace,
        devices.map((d) => ({ scope: label(d), device: d.gpio })),
      );
      closers.push(() => t.close());
      log.log('info', 'tracing to a VCD file', { trace: o.trace });
    }
    const http = httpOptions(o.http, o['http-token']);
    if (http) {
      const [{ DashboardServer }, { LocalDeviceLink }] = await Promise.all([
        import('../dashboard/dashboard-server.ts'),
        import('../dashboard/local-device-link.ts'),
      ]);
      const dash = await DashboardServer.start({
        ...http,
        log,
        devices: devices.map((d) => {
          const control = d.controlServer;
          if (!control)
            throw new Error(
              '--http needs a control endpoint for every device (give --control PATH with --fd)',
            );
          return { label: label(d), client: new LocalDeviceLink(control) };
        }),
      });
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
