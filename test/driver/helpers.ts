// Shared by the driver tests: settling the loopback, gates for slow handlers, request spies.
import type { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import type { EdgeEvent } from '../../src/driver/edge-event.ts';
import { REQUEST_QUEUE } from '../../src/protocol/constants.ts';
import type { GpioRequest } from '../../src/protocol/messages.ts';
import type { LoopbackChip } from '../../src/compose/loopback-chip.ts';
import type { VirtioDriverTransport } from '../../src/virtio/driver-transport.ts';

const kicks = new WeakMap<object, { n: number }>();

/**
 * Waits until the loopback is quiet. Interrupts and the device's side of a kick are microtasks,
 * but the driver sends its kicks once per event-loop turn (setImmediate), so a chain of requests
 * takes a turn each: wait turn by turn until two turns pass without a kick.
 */
export async function settle(lb: { transport: VirtioDriverTransport }, maxTurns = 10_000): Promise<void> {
  const t = lb.transport;
  let count = kicks.get(t);
  if (!count) {
    const c = { n: 0 };
    const kick = t.kick.bind(t);
    t.kick = (q) => {
      c.n++;
      kick(q);
    };
    kicks.set(t, c);
    count = c;
  }
  let quiet = 0;
  for (let i = 0; i < maxTurns; i++) {
    const before = count.n;
    await new Promise((r) => setImmediate(r));
    quiet = count.n === before ? quiet + 1 : 0;
    if (quiet === 2) return;
  }
  throw new Error(`loopback still busy after ${maxTurns} event-loop turns`);
}

export interface Gate {
  promise: Promise<void>;
  open: () => void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** What an edge event says, without the timestamp. */
export const brief = (e: EdgeEvent) => ({
  type: e.type,
  offset: e.offset,
  seqno: e.seqno,
  lineSeqno: e.lineSeqno,
});

export interface RequestSpy {
  /** Every request the device model handled, in order. */
  requests: GpioRequest[];
  /** Requests handled per requestq kick (one batch = the chains the device popped in one go). */
  batches: GpioRequest[][];
  /** The requests for one line, as [type, value]. */
  forLine(gpio: number): Array<[number, number]>;
}

/** Records what reaches the device model, and which requests the device saw in one kick. */
export function spyRequests(lb: LoopbackChip): RequestSpy {
  const vdev = lb.transport.device as VirtioGpioDevice;
  const requests: GpioRequest[] = [];
  const batches: GpioRequest[][] = [];
  let batch: GpioRequest[] | null = null;
  const handle = lb.device.handle.bind(lb.device);
  lb.device.handle = (req) => {
    requests.push({ ...req });
    batch?.push({ ...req });
    return handle(req);
  };
  const kick = vdev.kick.bind(vdev);
  vdev.kick = (index) => {
    if (index !== REQUEST_QUEUE) return kick(index);
    batch = [];
    try {
      kick(index);
    } finally {
      if (batch.length > 0) batches.push(batch);
      batch = null;
    }
  };
  return {
    requests,
    batches,
    forLine: (gpio) => requests.filter((r) => r.gpio === gpio).map((r) => [r.type, r.value]),
  };
}
