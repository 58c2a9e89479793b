import type { GuestAllocator } from '../virtqueue/guest-allocator.ts';
import type { GuestMemory } from '../virtqueue/guest-memory.ts';
import type { RingLayout } from '../virtqueue/split-ring.ts';

/** What a driver gets back once the device is running: memory to place buffers in, ring places. */
export interface ActiveRings {
  readonly memory: GuestMemory;
  readonly allocator: GuestAllocator;
  readonly layouts: readonly RingLayout[];
  /** Ring features in force. */
  readonly features: bigint;
}

/** A driver's view of a transport (loopback, vhost-user front-end); knows nothing of the device type. */
export interface VirtioDriverTransport {
  readonly deviceId: number;
  deviceFeatures(): Promise<bigint>;
  readConfig(offset: number, size: number): Promise<Uint8Array>;
  /** Acknowledge features, place and start queues of the given sizes (DRIVER_OK). */
  activate(features: bigint, queueSizes: readonly number[]): Promise<ActiveRings>;
  kick(queueIndex: number): void;
  /** handler runs when the device signals queue `queueIndex` (used buffers). */
  onInterrupt(queueIndex: number, handler: () => void): void;
  close(): Promise<void>;
}
