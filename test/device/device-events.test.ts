// The device event stream on its own: nothing is built while nobody listens (every producer checks
// `active`), listeners come and go, a throwing listener is dropped, and the names and code tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DeviceEventStream,
  directionNameOf,
  edgeNameOf,
  type DeviceEvent,
} from '../../src/device/device-events.ts';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import { Direction, IrqType, MessageType } from '../../src/protocol/constants.ts';
import type { DescriptorChain } from '../../src/virtqueue/descriptor-chain.ts';

/** Every kind of traffic the model produces events for. */
function traffic(gpio: GpioDevice<number>, lines: SimulatedLines, virtio: VirtioGpioDevice | null): void {
  virtio?.setFeatures(virtio.offeredFeatures);
  gpio.setIrqSupported(true);
  gpio.handle({ type: MessageType.SET_VALUE, gpio: 0, value: 1 });
  gpio.handle({ type: MessageType.SET_DIRECTION, gpio: 0, value: Direction.OUT });
  gpio.handle({ type: MessageType.SET_VALUE, gpio: 0, value: 0 });
  gpio.handle({ type: MessageType.SET_IRQ_TYPE, gpio: 1, value: IrqType.EDGE_BOTH });
  gpio.queueEventBuffer(1, 1);
  lines.setInput(1, 1); // delivered
  lines.setInput(1, 0); // latched
  lines.setInput(1, 1); // coalesced
  gpio.queueEventBuffer(1, 2); // delivered at once
  gpio.queueEventBuffer(1, 3);
  gpio.queueEventBuffer(1, 4); // invalid
  gpio.dropEventBuffers();
  gpio.queueEventBuffer(1, 5);
  gpio.handle({ type: MessageType.SET_IRQ_TYPE, gpio: 1, value: IrqType.NONE }); // invalid, held
  gpio.handle({ type: MessageType.SET_IRQ_TYPE, gpio: 2, value: IrqType.EDGE_RISING });
  gpio.resetDriverState();
}

test('nobody listening: no producer builds or emits an event', (t) => {
  const lines = new SimulatedLines(4, ['a', 'b']);
  const gpio = new GpioDevice<number>(lines);
  gpio.setEventSink(() => {});
  const line = t.mock.method(gpio.events, 'line');
  const device = t.mock.method(gpio.events, 'device');
  traffic(gpio, lines, null);
  const virtio = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(new SimulatedLines(2)));
  const vline = t.mock.method(virtio.gpio.events, 'device');
  virtio.setFeatures(virtio.offeredFeatures);
  assert.equal(gpio.events.active, false);
  assert.deepEqual([line.mock.callCount(), device.mock.callCount(), vline.mock.callCount()], [0, 0, 0]);
});

test('with a listener the same traffic produces every line event type, names attached, in time order', () => {
  const lines = new SimulatedLines(4, ['a', 'b']);
  const gpio = new GpioDevice<number>(lines);
  gpio.setEventSink(() => {});
  const seen: DeviceEvent[] = [];
  const stop = gpio.events.subscribe((e) => seen.push(e));
  traffic(gpio, lines, null);
  stop();
  assert.equal(gpio.events.active, false);
  const types = new Set(seen.map((e) => e.type));
  for (const want of [
    'output',
    'input',
    'direction',
    'irq-type',
    'armed',
    'latched',
    'coalesced',
    'delivered',
    'invalid',
    'dropped',
  ])
    assert.ok(types.has(want as DeviceEvent['type']), want);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].timeNs >= seen[i - 1].timeNs);
  assert.ok(seen.every((e) => !('line' in e) || e.name === ['a', 'b', '', ''][e.line]));
  const n = seen.length;
  traffic(gpio, lines, null);
  assert.equal(seen.length, n, 'unsubscribed: nothing more');
});

test('features come from the virtio layer; a throwing listener is removed and reported', () => {
  const virtio = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(new SimulatedLines(2)));
  const seen: DeviceEvent[] = [];
  const errors: unknown[] = [];
  virtio.gpio.events.onListenerError = (e) => errors.push(e);
  virtio.gpio.events.subscribe(() => {
    throw new Error('boom');
  });
  virtio.gpio.events.subscribe((e) => seen.push(e));
  virtio.setFeatures(virtio.offeredFeatures);
  virtio.setFeatures(virtio.offeredFeatures & ~1n);
  assert.deepEqual(
    seen.map((e) => (e.type === 'features' ? [e.features, e.irq] : e.type)),
    [
      [`0x${virtio.offeredFeatures.toString(16)}`, true],
      [`0x${(virtio.offeredFeatures & ~1n).toString(16)}`, false],
    ],
  );
  assert.equal(errors.length, 1, 'the broken listener ran once');
});

test('code tables: virtio direction and IRQ type codes to names', () => {
  assert.deepEqual([0, 1, 2].map(directionNameOf), ['none', 'output', 'input']);
  assert.deepEqual([0, 1, 2, 3, 4, 8].map(edgeNameOf), [
    'none',
    'rising',
    'falling',
    'both',
    'level-high',
    'level-low',
  ]);
  const s = new DeviceEventStream(['x']);
  assert.equal(s.active, false);
});
