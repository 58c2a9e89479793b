import type { DeviceQueue } from '../virtqueue/device-queue.ts';

/**
 * A virtio device as a transport sees it: features, config space, and queues to serve.
 * Transports (vhost-user, loopback) drive this; they know nothing of what the device is.
 */
export interface VirtioDevice {
  readonly deviceId: number;
  readonly numQueues: number;
  readonly maxQueueSize: number;
  /** Everything offered: device bits, VERSION_1, ring features the device implements. */
  readonly offeredFeatures: bigint;
  /** A slice of the config space, or null when the range is outside it. */
  readConfig(offset: number, size: number): Uint8Array | null;
  /** The features the driver acknowledged (a subset of offeredFeatures). */
  setFeatures(features: bigint): void;
  /** Queue `index` is live: the device may read and write it and call notify(). */
  startQueue(index: number, queue: DeviceQueue, notify: () => void): void;
  /** Queue `index` is stopped: touch it no more. Buffers held from it are kept unless `drop`. */
  stopQueue(index: number, drop: boolean): void;
  /** The driver made buffers available on queue `index`. */
  kick(index: number): void;
  /** Forget every ring-related state (held buffers) without touching guest memory. */
  reset(): void;
  /** Set by the transport: the device found a queue malformed and needs a reset. */
  onNeedsReset: ((queueIndex: number, error: Error) => void) | null;
}
