import { wantedFeatures, type FeatureChoice } from '../driver/wanted-features.ts';
import { decodeConfig } from '../protocol/config.ts';
import {
  EVENT_QUEUE,
  Feature,
  IRQ_RESPONSE_SIZE,
  REQUEST_QUEUE,
  RESPONSE_SIZE,
  bit,
} from '../protocol/constants.ts';
import { encodeIrqRequest, encodeRequest } from '../protocol/messages.ts';
import type { VirtioDriverTransport } from '../virtio/driver-transport.ts';
import { DriverQueue } from '../virtqueue/driver-queue.ts';
import { ringOptions } from '../virtqueue/split-ring.ts';

/** A completed chain as the driver sees it. */
export interface Completion {
  len: number;
  data: Uint8Array;
  /** Position in the queue's completion order (0-based). */
  order: number;
  atNs: bigint;
}

export interface RequestShape {
  /** Split the 8 request bytes into descriptors of these sizes (default [8]). */
  split?: number[];
  /** Writable descriptor sizes (default [2]). */
  writable?: number[];
  indirect?: boolean;
  /** Prefill of the writable bytes, to see which the device wrote (default 0xAA). */
  fill?: number;
}

/** Which offered features to accept (each by default), and the queue size (default 64). */
export interface ProbeOptions extends FeatureChoice {
  queueSize?: number;
}

interface Slot {
  resolve: (c: Completion) => void;
  settled: Promise<Completion>;
}

const newSlot = (): Slot => {
  let resolve!: (c: Completion) => void;
  const settled = new Promise<Completion>((r) => (resolve = r));
  return { resolve, settled };
};

/**
 * An instrumented virtio-gpio driver for conformance checks: no rules of its own, every
 * chain placed exactly as asked, every completion recorded with its order and used length.
 */
export class Probe {
  ngpio = 0;
  namesSize = 0;
  padding = 0;
  offered = 0n;
  features = 0n;
  interrupts = [0, 0];
  requestq!: DriverQueue<Slot>;
  eventq: DriverQueue<Slot> | null = null;
  private order = [0, 0];

  private constructor(readonly transport: VirtioDriverTransport) {}

  static async open(transport: VirtioDriverTransport, opts: ProbeOptions = {}): Promise<Probe> {
    const p = new Probe(transport);
    p.offered = await transport.deviceFeatures();
    const config = await transport.readConfig(0, 8);
    p.padding = config[2] | (config[3] << 8);
    const c = decodeConfig(config);
    p.ngpio = c.ngpio;
    p.namesSize = c.namesSize;
    p.features = p.offered & wantedFeatures(opts);
    const irq = p.has(Feature.GPIO_F_IRQ);
    const size = opts.queueSize ?? 64;
    const rings = await transport.activate(p.features, irq ? [size, size] : [size]);
    const ringOpts = ringOptions(p.features);
    p.requestq = new DriverQueue(rings.memory, rings.layouts[REQUEST_QUEUE], rings.allocator, ringOpts);
    transport.onInterrupt(REQUEST_QUEUE, () => p.collect(REQUEST_QUEUE));
    if (irq) {
      p.eventq = new DriverQueue(rings.memory, rings.layouts[EVENT_QUEUE], rings.allocator, ringOpts);
      transport.onInterrupt(EVENT_QUEUE, () => p.collect(EVENT_QUEUE));
    }
    return p;
  }

  has(feature: number): boolean {
    return (this.features & bit(feature)) !== 0n;
  }

  /** Places one request; resolves when the device returns it. */
  request(type: number, gpio: number, value: number, shape: RequestShape = {}): Promise<Completion> {
    const bytes = encodeRequest({ type, gpio, value });
    const split = shape.split ?? [8];
    const readable: Uint8Array[] = [];
    let at = 0;
    for (const n of split) {
      readable.push(bytes.subarray(at, at + n));
      at += n;
    }
    const slot = newSlot();
    this.requestq.add(
      {
        readable,
        writable: shape.writable ?? [RESPONSE_SIZE],
        indirect: shape.indirect,
        fill: shape.fill ?? 0xaa,
      },
      slot,
    );
    if (this.requestq.kickNeeded()) this.transport.kick(REQUEST_QUEUE);
    return slot.settled;
  }

  /** Queues an eventq buffer for `gpio` (unmask); resolves when the device hands it back. */
  eventBuffer(gpio: number): Promise<Completion> {
    if (!this.eventq) throw new Error('VIRTIO_GPIO_F_IRQ was not negotiated');
    const slot = newSlot();
    this.eventq.add({ readable: [encodeIrqRequest(gpio)], writable: [IRQ_RESPONSE_SIZE], fill: 0xaa }, slot);
    if (this.eventq.kickNeeded()) this.transport.kick(EVENT_QUEUE);
    return slot.settled;
  }

  collect(queue: number): void {
    this.interrupts[queue]++;
    const q = queue === REQUEST_QUEUE ? this.requestq : this.eventq;
    if (!q) return;
    const atNs = process.hrtime.bigint();
    for (const u of q.collect())
      u.token.resolve({ len: u.len, data: u.data, order: this.order[queue]++, atNs });
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

/** The completion, or null if it does not arrive within ms. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => (t = setTimeout(() => r(null), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}
