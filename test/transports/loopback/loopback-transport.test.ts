// The loopback transport with a device that is not GPIO at all (it echoes each request reversed):
// the transport moves rings, features, config and notifications and knows nothing of what it carries.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoopbackTransport } from '../../../src/transports/loopback/loopback-transport.ts';
import type { VirtioDevice } from '../../../src/virtio/virtio-device.ts';
import { VirtioFeature, bit } from '../../../src/virtio/feature-bits.ts';
import type { DeviceQueue } from '../../../src/virtqueue/device-queue.ts';
import { DriverQueue } from '../../../src/virtqueue/driver-queue.ts';
import { ringOptions } from '../../../src/virtqueue/split-ring.ts';

const ECHO_ID = 0x7e57;

/** Reverses the bytes of each chain into its writable part; records what the transport did to it. */
class ReversingDevice implements VirtioDevice {
  readonly deviceId = ECHO_ID;
  readonly numQueues = 2;
  readonly maxQueueSize = 16;
  readonly offeredFeatures = bit(VirtioFeature.VERSION_1) | bit(VirtioFeature.RING_EVENT_IDX) | bit(3);
  onNeedsReset: ((queueIndex: number, error: Error) => void) | null = null;
  readonly calls: string[] = [];
  features = -1n;
  private readonly queues: Array<{ queue: DeviceQueue; notify: () => void } | null> = [null, null];

  readConfig(offset: number, size: number): Uint8Array | null {
    const config = Uint8Array.of(0xca, 0xfe, 0xf0, 0x0d);
    return offset < 0 || offset + size > config.length ? null : config.slice(offset, offset + size);
  }
  setFeatures(features: bigint): void {
    this.features = features;
    this.calls.push('setFeatures');
  }
  startQueue(index: number, queue: DeviceQueue, notify: () => void): void {
    this.queues[index] = { queue, notify };
    this.calls.push(`start ${index}`);
  }
  stopQueue(index: number, drop: boolean): void {
    this.queues[index] = null;
    this.calls.push(`stop ${index} drop=${drop}`);
  }
  kick(index: number): void {
    this.calls.push(`kick ${index}`);
    const live = this.queues[index];
    if (!live) return;
    for (let chain = live.queue.pop(); chain; chain = live.queue.pop())
      live.queue.push(chain.head, chain.write(chain.read().reverse()));
    if (live.queue.needsNotify()) live.notify();
  }
  reset(): void {
    this.calls.push('reset');
  }
  /** Notifies the driver `times` times in a row. */
  signal(index: number, times: number): void {
    for (let i = 0; i < times; i++) this.queues[index]?.notify();
  }
}

async function open(opts: { features?: bigint } = {}) {
  const device = new ReversingDevice();
  const transport = new LoopbackTransport(device);
  const offered = await transport.deviceFeatures();
  const rings = await transport.activate(opts.features ?? offered, [8, 4]);
  const ro = ringOptions(rings.features);
  const queues = rings.layouts.map((l) => new DriverQueue<string>(rings.memory, l, rings.allocator, ro));
  return { device, transport, rings, queues, offered };
}

const settle = () => new Promise<void>((r) => setImmediate(r));

describe('loopback transport', () => {
  test('features: the device offer is shown as is; activate acknowledges only offered bits', async () => {
    const { device, rings, offered } = await open({ features: bit(VirtioFeature.VERSION_1) | bit(40) });
    assert.equal(offered, device.offeredFeatures);
    assert.equal(rings.features, bit(VirtioFeature.VERSION_1));
    assert.equal(device.features, bit(VirtioFeature.VERSION_1));
    assert.deepEqual(device.calls, ['setFeatures', 'start 0', 'start 1']);
  });

  test('config reads come from the device; outside it is a RangeError', async () => {
    const { transport } = await open();
    assert.deepEqual([...(await transport.readConfig(1, 2))], [0xfe, 0xf0]);
    await assert.rejects(transport.readConfig(3, 2), RangeError);
  });

  test('rings are placed apart from each other and from the buffer space', async () => {
    const { rings } = await open();
    const [a, b] = rings.layouts;
    assert.deepEqual(
      rings.layouts.map((l) => l.size),
      [8, 4],
    );
    assert.ok(b.descAddr > a.usedAddr + 6 + 8 * a.size, 'queue 1 after queue 0');
    const buffer = rings.allocator.alloc(32);
    assert.ok(buffer > b.usedAddr + 6 + 8 * b.size, 'buffers after the rings');
  });

  test('a request goes through the device and back; kicks and interrupts coalesce per turn', async () => {
    const { device, transport, queues } = await open();
    let interrupts = 0;
    transport.onInterrupt(0, () => interrupts++);
    queues[0].add({ readable: [Uint8Array.of(1, 2, 3)], writable: [3] }, 'first');
    queues[0].add({ readable: [Uint8Array.of(9, 8)], writable: [2] }, 'second');
    transport.kick(0);
    transport.kick(0);
    await settle();
    assert.equal(device.calls.filter((c) => c === 'kick 0').length, 1, 'two kicks in one turn: one');
    assert.equal(interrupts, 1);
    const used = queues[0].collect();
    assert.deepEqual(
      used.map((u) => [u.token, u.len, [...u.data]]),
      [
        ['first', 3, [3, 2, 1]],
        ['second', 2, [8, 9]],
      ],
    );
    device.signal(0, 3);
    await settle();
    assert.equal(interrupts, 2, 'three notifications in one turn: one interrupt');
    device.signal(1, 1);
    await settle();
    assert.equal(interrupts, 2, 'queue 1 has no handler: nothing runs for queue 0');
  });

  test('refuses more queues than the device has, or a queue larger than its maximum', async () => {
    const device = new ReversingDevice();
    await assert.rejects(
      new LoopbackTransport(device).activate(device.offeredFeatures, [4, 4, 4]),
      RangeError,
    );
    await assert.rejects(new LoopbackTransport(device).activate(device.offeredFeatures, [32]), RangeError);
  });

  test('close stops every queue dropping what it holds, resets the device, and ignores later kicks', async () => {
    const { device, transport } = await open();
    device.calls.length = 0;
    await transport.close();
    transport.kick(0);
    await settle();
    assert.deepEqual(device.calls, ['stop 0 drop=true', 'stop 1 drop=true', 'reset']);
    await transport.close();
    assert.equal(device.calls.length, 3, 'a second close does nothing');
  });
});
