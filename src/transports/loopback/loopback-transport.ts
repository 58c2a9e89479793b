import type { VirtioDevice } from '../../virtio/virtio-device.ts';
import type { ActiveRings, VirtioDriverTransport } from '../../virtio/driver-transport.ts';
import { DeviceQueue } from '../../virtqueue/device-queue.ts';
import { GuestAllocator } from '../../virtqueue/guest-allocator.ts';
import { GuestMemory } from '../../virtqueue/guest-memory.ts';
import { placeRings } from '../../virtqueue/ring-placement.ts';
import { ringOptions } from '../../virtqueue/split-ring.ts';

export interface LoopbackOptions {
  /** Guest memory size in bytes (default 1 MiB). */
  memoryBytes?: number;
  /** Guest-physical base address (default 0x10000, so a zero address is never valid). */
  base?: number;
}

const resolved = Promise.resolve();

/**
 * Device and driver in one process over one shared guest memory, through the same ring code a
 * real transport uses. Kicks and interrupts are delivered as microtasks, coalesced per queue:
 * a batch of chains costs one microtask each way, with nothing built per notification.
 */
export class LoopbackTransport implements VirtioDriverTransport {
  readonly deviceId: number;
  readonly memory: GuestMemory;
  private readonly handlers: Array<(() => void) | undefined> = [];
  private readonly kickPending: boolean[] = [];
  private readonly irqPending: boolean[] = [];
  /** Per queue, made once: the microtask that delivers a kick / an interrupt. */
  private readonly kickTasks: Array<() => void> = [];
  private readonly irqTasks: Array<() => void> = [];
  private closed = false;

  constructor(
    readonly device: VirtioDevice,
    private readonly opts: LoopbackOptions = {},
  ) {
    this.deviceId = device.deviceId;
    const base = opts.base ?? 0x10000;
    this.memory = new GuestMemory([
      { guestPhysAddr: base, bytes: new Uint8Array(opts.memoryBytes ?? 1 << 20) },
    ]);
    device.onNeedsReset = () => {};
    for (let i = 0; i < device.numQueues; i++) {
      this.kickPending.push(false);
      this.irqPending.push(false);
      this.kickTasks.push(() => {
        this.kickPending[i] = false;
        if (!this.closed) this.device.kick(i);
      });
      this.irqTasks.push(() => {
        this.irqPending[i] = false;
        if (!this.closed) this.handlers[i]?.();
      });
    }
  }

  async deviceFeatures(): Promise<bigint> {
    return this.device.offeredFeatures;
  }

  async readConfig(offset: number, size: number): Promise<Uint8Array> {
    const c = this.device.readConfig(offset, size);
    if (!c) throw new RangeError(`config read [${offset}, +${size}) outside the config space`);
    return c;
  }

  async activate(features: bigint, queueSizes: readonly number[]): Promise<ActiveRings> {
    if (queueSizes.length > this.device.numQueues)
      throw new RangeError(`device has ${this.device.numQueues} queues`);
    const accepted = features & this.device.offeredFeatures;
    this.device.setFeatures(accepted);
    const region = this.memory.regions[0];
    for (const size of queueSizes)
      if (size > this.device.maxQueueSize)
        throw new RangeError(`queue size ${size} > ${this.device.maxQueueSize}`);
    const { layouts, end: at } = placeRings(queueSizes, region.guestPhysAddr);
    const allocator = new GuestAllocator(at, region.guestPhysAddr + region.bytes.length - at);
    const ringOpts = ringOptions(accepted);
    const rings: ActiveRings = { memory: this.memory, allocator, layouts, features: accepted };
    region.bytes.fill(0, 0, at - region.guestPhysAddr);
    layouts.forEach((l, i) =>
      this.device.startQueue(i, new DeviceQueue(this.memory, l, ringOpts), () => this.interrupt(i)),
    );
    return rings;
  }

  kick(queueIndex: number): void {
    const task = this.kickTasks[queueIndex];
    if (this.closed || task === undefined || this.kickPending[queueIndex]) return;
    this.kickPending[queueIndex] = true;
    void resolved.then(task);
  }

  onInterrupt(queueIndex: number, handler: () => void): void {
    this.handlers[queueIndex] = handler;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (let i = 0; i < this.device.numQueues; i++) this.device.stopQueue(i, true);
    this.device.reset();
  }

  private interrupt(queueIndex: number): void {
    const task = this.irqTasks[queueIndex];
    if (this.closed || task === undefined || this.irqPending[queueIndex]) return;
    this.irqPending[queueIndex] = true;
    void resolved.then(task);
  }
}
