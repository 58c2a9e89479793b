import type { DeviceConfig } from './served-device.ts';

/** Where `vgpio serve --workers N` serves each device (indices into the config list). */
export interface WorkerPlacement {
  /** Devices per worker thread (outer index: the worker's number). */
  groups: number[][];
  /** Devices kept on the main thread, each with why. */
  main: Array<{ device: number; reason: string }>;
}

/** A per-device `"worker": k` that does not fit the worker count: the message names the device's field. */
export class PlacementError extends Error {
  override name = 'PlacementError';
}

/**
 * Devices go to `workers` threads round-robin, or to their `"worker": k`. A device on a board stays
 * on the main thread (the board's nets are synchronous between its devices), and so does every
 * device of a file with an `mqtt` section (the bridge drives and watches the devices in process).
 */
export function placeDevices(
  configs: readonly DeviceConfig[],
  workers: number,
  opts: { mqtt?: boolean } = {},
): WorkerPlacement {
  const placement: WorkerPlacement = { groups: Array.from({ length: workers }, () => []), main: [] };
  let next = 0;
  configs.forEach((c, i) => {
    if (c.worker !== undefined && c.worker >= workers)
      throw new PlacementError(
        workers === 0
          ? `devices[${i}].worker: expected no worker without --workers N (or "workers": N)`
          : `devices[${i}].worker: expected a worker 0..${workers - 1} (--workers ${workers})`,
      );
    if (workers === 0) placement.main.push({ device: i, reason: 'no workers' });
    else if (c.simulated) placement.main.push({ device: i, reason: 'on the board' });
    else if (opts.mqtt) placement.main.push({ device: i, reason: 'bridged to MQTT' });
    else if (c.worker !== undefined) placement.groups[c.worker].push(i);
    else placement.groups[next++ % workers].push(i);
  });
  return placement;
}
