import type { LogFields, LogLevel } from '../log/logger.ts';
import type { DeviceConfig } from './served-device.ts';

/**
 * The messages between `vgpio serve --workers N`'s main thread (worker-pool.ts) and a device
 * worker (device-worker.ts). Both ends are this package's code in one process: typed, not decoded.
 */

/** A device as a worker serves it: its config with the listening sockets the main thread bound. */
export type WorkerDeviceConfig = Omit<DeviceConfig, 'simulated'>;

export interface DeviceWorkerInit {
  /** The worker's number (0..N-1), in its log lines. */
  worker: number;
  /** Records below this level are not sent to the main thread at all. */
  logLevel: LogLevel;
  devices: WorkerDeviceConfig[];
}

export type FromDeviceWorker =
  /** A log record of device `device` (its index in the init list), or of the worker (null). */
  | { t: 'log'; device: number | null; level: LogLevel; msg: string; fields: LogFields }
  /** Every device serves. */
  | { t: 'ready' }
  /** A device could not start: the worker ends. */
  | { t: 'failed'; error: string }
  /** The front-end on a device's connected fd went away (`serve --fd` ends then). */
  | { t: 'frontend-gone'; device: number; reason: string }
  /** An uncaught error: the worker closed its devices and ends. */
  | { t: 'died'; error: string }
  /** Answer to `close`: every device is closed. */
  | { t: 'closed' };

export type ToDeviceWorker = { t: 'close' };
