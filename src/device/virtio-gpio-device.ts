import {
  EVENT_QUEUE,
  Feature,
  IRQ_REQUEST_SIZE,
  IRQ_RESPONSE_SIZE,
  MessageType,
  REQUEST_QUEUE,
  REQUEST_SIZE,
  RESPONSE_SIZE,
  Status,
  VIRTIO_ID_GPIO,
  bit,
  messageTypeName,
  type IrqStatus,
} from '../protocol/constants.ts';
import { decodeIrqRequest, type GpioRequest } from '../protocol/messages.ts';
import type { VirtioDevice } from '../virtio/virtio-device.ts';
import type { DescriptorChain } from '../virtqueue/descriptor-chain.ts';
import type { DeviceQueue } from '../virtqueue/device-queue.ts';
import { GuestMemoryError } from '../virtqueue/guest-memory.ts';
import { VirtqueueError } from '../virtqueue/virtqueue-error.ts';
import { GpioDevice } from './gpio-device.ts';

interface LiveQueue {
  queue: DeviceQueue;
  notify: () => void;
}

export interface VirtioGpioDeviceOptions {
  /** Offer VIRTIO_GPIO_F_IRQ (default true). */
  irq?: boolean;
  maxQueueSize?: number;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

/**
 * Serves a GpioDevice over virtqueues: pops requestq chains, decodes them by bytes whatever the
 * descriptor layout, replies in order; holds eventq chains for the model and writes the status
 * byte when the model hands one back.
 */
export class VirtioGpioDevice implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_GPIO;
  readonly numQueues = 2;
  readonly maxQueueSize: number;
  readonly offeredFeatures: bigint;
  onNeedsReset: ((queueIndex: number, error: Error) => void) | null = null;
  negotiated = 0n;
  /** Features last reported in the log (again after a reset: each driver's choice is logged). */
  private announced: bigint | null = null;
  private readonly live: Array<LiveQueue | null> = [null, null];
  /** Hand-backs made while the eventq was stopped, written when it starts again. */
  private pendingReturns: Array<[DescriptorChain, IrqStatus]> = [];
  private readonly log: NonNullable<VirtioGpioDeviceOptions['log']>;
  /** Scratch for one request and one reply: the requestq is served without allocating. */
  private readonly request = new Uint8Array(REQUEST_SIZE);
  private readonly requestView = new DataView(this.request.buffer);
  private readonly response = new Uint8Array(RESPONSE_SIZE);
  private readonly req: GpioRequest = { type: 0, gpio: 0, value: 0 };

  constructor(
    readonly gpio: GpioDevice<DescriptorChain>,
    opts: VirtioGpioDeviceOptions = {},
  ) {
    this.maxQueueSize = opts.maxQueueSize ?? 256;
    this.log = opts.log ?? (() => {});
    this.offeredFeatures =
      bit(Feature.VERSION_1) |
      bit(Feature.RING_INDIRECT_DESC) |
      bit(Feature.RING_EVENT_IDX) |
      (opts.irq === false ? 0n : bit(Feature.GPIO_F_IRQ));
    gpio.setEventSink((chain, status) => this.completeEvent(chain, status));
  }

  readConfig(offset: number, size: number): Uint8Array | null {
    const config = this.gpio.config();
    if (offset < 0 || size < 0 || offset + size > config.length) return null;
    return config.slice(offset, offset + size);
  }

  setFeatures(features: bigint): void {
    this.negotiated = features & this.offeredFeatures;
    this.gpio.setIrqSupported(this.irqNegotiated);
    if (this.gpio.events.active)
      this.gpio.events.device({
        type: 'features',
        features: `0x${this.negotiated.toString(16)}`,
        irq: this.irqNegotiated,
      });
    if (this.negotiated === this.announced || !(this.offeredFeatures & bit(Feature.GPIO_F_IRQ))) return;
    this.announced = this.negotiated;
    if (this.irqNegotiated) this.log('info', 'interrupts negotiated (VIRTIO_GPIO_F_IRQ)');
    else
      this.log(
        'warn',
        'the driver did not negotiate VIRTIO_GPIO_F_IRQ: interrupts are unavailable (QEMU < 9 never passes it to the guest)',
      );
  }

  get irqNegotiated(): boolean {
    return (this.negotiated & bit(Feature.GPIO_F_IRQ)) !== 0n;
  }

  startQueue(index: number, queue: DeviceQueue, notify: () => void): void {
    if (index !== REQUEST_QUEUE && index !== EVENT_QUEUE) return;
    this.live[index] = { queue, notify };
    if (index === EVENT_QUEUE) {
      const pending = this.pendingReturns;
      this.pendingReturns = [];
      for (const [chain, status] of pending) this.completeEvent(chain, status);
      this.gpio.resumeEvents();
    }
    this.kick(index);
  }

  stopQueue(index: number, drop: boolean): void {
    if (index !== REQUEST_QUEUE && index !== EVENT_QUEUE) return;
    this.live[index] = null;
    if (index === EVENT_QUEUE) {
      this.gpio.suspendEvents();
      if (drop) {
        this.gpio.dropEventBuffers();
        this.pendingReturns = [];
      }
    }
  }

  /** Drops held buffers and interrupt state; negotiated features stay until the next setFeatures. */
  reset(): void {
    this.live[0] = this.live[1] = null;
    this.pendingReturns = [];
    this.announced = null;
    this.gpio.resetDriverState();
  }

  kick(index: number): void {
    const live = this.live[index];
    if (!live) return;
    try {
      if (index === REQUEST_QUEUE) this.serveRequests(live);
      else this.takeEventBuffers(live);
    } catch (e) {
      this.broken(index, e);
    }
  }

  /** Queues found malformed (each needed a reset): exact, where the log line is rate-limited. */
  malformedQueues = 0;

  private broken(index: number, e: unknown): void {
    if (!(e instanceof VirtqueueError || e instanceof GuestMemoryError)) throw e;
    this.malformedQueues++;
    this.log('error', `queue ${index} is malformed: ${e.message}; device needs reset`);
    this.live[index] = null;
    this.onNeedsReset?.(index, e);
  }

  private serveRequests(live: LiveQueue): void {
    let chain: DescriptorChain | null;
    // At most a ring's worth per kick: a driver adding chains as fast as they are served must not
    // keep us here for good. Those left were added while we served, and the driver kicks for them
    // (or, with kicks suppressed, the transport looks again: VhostUserBackend).
    let budget = live.queue.size;
    // Each chain is answered and pushed before the next pop: the queue's reusable chain will do.
    while (budget-- > 0 && (chain = live.queue.popTransient()) !== null) {
      const len = this.reply(chain);
      live.queue.push(chain.head, len);
    }
    if (live.queue.needsNotify()) live.notify(); // one notification check per batch
  }

  /** Handles one request chain; returns the used length. */
  private reply(chain: DescriptorChain): number {
    // le16 type, le16 gpio, le32 value (docs/protocol.md §1), decoded in place: straight from the
    // mapping when one descriptor holds the request, else gathered into scratch first. (Written out
    // here: a shared decode function called from this path measurably allocated per request.)
    const req = this.req;
    const src = chain.directReadable(REQUEST_SIZE);
    if (src !== null) {
      const o = chain.directOffset;
      req.type = src[o] | (src[o + 1] << 8);
      req.gpio = src[o + 2] | (src[o + 3] << 8);
      req.value = (src[o + 4] | (src[o + 5] << 8) | (src[o + 6] << 16) | (src[o + 7] << 24)) >>> 0;
    } else {
      const got = chain.readInto(this.request, REQUEST_SIZE);
      if (got < REQUEST_SIZE) {
        this.log('warn', `requestq: ${got}-byte request (need ${REQUEST_SIZE}): ERR`);
        return this.writeError(chain, 2);
      }
      req.type = this.requestView.getUint16(0, true);
      req.gpio = this.requestView.getUint16(2, true);
      req.value = this.requestView.getUint32(4, true);
    }
    const type = req.type;
    const size = this.gpio.responseSize(type);
    if (chain.writableLength < size) {
      this.log(
        'warn',
        `requestq: ${messageTypeName(type)} response needs ${size} bytes, has ${chain.writableLength}`,
      );
      return this.writeError(chain, size);
    }
    const r = this.gpio.handle(req);
    let dst: Uint8Array | null;
    if (r.status !== Status.OK)
      this.log('debug', `${messageTypeName(type)} gpio=${req.gpio} value=${req.value}: ERR`);
    if (type === MessageType.GET_LINE_NAMES && r.names) {
      chain.write(Uint8Array.of(r.status));
      chain.write(r.names, 1);
    } else if (size === RESPONSE_SIZE && (dst = chain.directWritable(RESPONSE_SIZE)) !== null) {
      dst[chain.directOffset] = r.status;
      dst[chain.directOffset + 1] = r.value & 0xff;
    } else {
      this.response[0] = r.status;
      this.response[1] = r.value & 0xff;
      chain.write(this.response);
      if (size > RESPONSE_SIZE) chain.write(new Uint8Array(size - RESPONSE_SIZE), RESPONSE_SIZE);
    }
    return size;
  }

  private writeError(chain: DescriptorChain, size: number): number {
    const n = Math.min(size, chain.writableLength);
    const bytes = new Uint8Array(n);
    if (n > 0) bytes[0] = Status.ERR;
    return chain.write(bytes);
  }

  private takeEventBuffers(live: LiveQueue): void {
    let chain: DescriptorChain | null;
    while ((chain = live.queue.pop()) !== null) {
      const ok = chain.readableLength >= IRQ_REQUEST_SIZE && chain.writableLength >= IRQ_RESPONSE_SIZE;
      this.gpio.queueEventBuffer(ok ? decodeIrqRequest(chain.read(IRQ_REQUEST_SIZE)) : null, chain);
      if (!this.live[EVENT_QUEUE]) return; // the hand-back found the ring broken
    }
    if (live.queue.needsNotify()) live.notify();
  }

  /** The model hands a buffer back: write status, used length 1, notify. */
  private completeEvent(chain: DescriptorChain, status: IrqStatus): void {
    const live = this.live[EVENT_QUEUE];
    if (!live) {
      this.pendingReturns.push([chain, status]); // stopped: touch nothing until it starts (protocol.md D16)
      return;
    }
    try {
      const len = chain.writableLength >= IRQ_RESPONSE_SIZE ? chain.write(Uint8Array.of(status)) : 0;
      live.queue.push(chain.head, len);
      if (live.queue.needsNotify()) live.notify();
    } catch (e) {
      this.broken(EVENT_QUEUE, e);
    }
  }
}
