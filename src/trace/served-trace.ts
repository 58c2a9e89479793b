import { encodeEvent } from '../control/control-protocol.ts';
import { lineStatuses } from '../control/control-server.ts';
import type { GpioDevice } from '../device/gpio-device.ts';
import { VcdFile } from './vcd-file.ts';

export interface TracedDevice<T> {
  scope: string;
  device: GpioDevice<T>;
}

/**
 * `serve --trace FILE.vcd`: every device of the process in one VCD file, straight from the
 * devices' event streams (one scope per device), from now until `close()`.
 */
export function startTrace<T>(path: string, devices: readonly TracedDevice<T>[]): { close(): void } {
  const startNs = process.hrtime.bigint();
  const file = new VcdFile(
    path,
    devices.map((d) => ({ scope: d.scope, lines: lineStatuses(d.device) })),
    startNs,
  );
  const stops = devices.map((d, i) => d.device.events.subscribe((e) => file.event(i, encodeEvent(e))));
  return {
    close: () => {
      for (const s of stops) s();
      file.close();
    },
  };
}
