// VhostUserServer serving VirtioGpioDevice(GpioDevice(SimulatedLines)) over a real Unix socket,
// driven by a hand-written raw client (every reply seen as sent) and by VhostUserFrontend + Chip.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Chip } from '../../../src/driver/chip.ts';
import { Direction, IrqType } from '../../../src/protocol/constants.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import {
  Request,
  decodeVringState,
  encodeConfigPayload,
  encodeU64,
  encodeVringState,
} from '../../../src/transports/vhost-user/message.ts';
import {
  ACKED_PROTOCOL,
  CHIP_OPTS,
  DEVICE_FEATURES,
  OFFERED_PROTOCOL,
  PROTOCOL_BIT,
  RawClient,
  WIRE_FEATURES,
  rawActivate,
  serveGpio,
  settle,
  tempDir,
  waitFor,
  type ServedGpio,
} from './harness.ts';

const NAMES = ['led', 'button', '', 'irq'];
// "led\0button\0\0irq\0" and four NULs for the unnamed lines 4..7.
const NAMES_SIZE = 4 + 7 + 1 + 4 + 4;

describe('vhost-user happy path, in process', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  let dev: ServedGpio;
  const cleanups: Array<() => unknown> = [];

  before(() => {
    dev = serveGpio(`${tmp.dir}/gpio.sock`, 8, NAMES);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await settle(Promise.resolve().then(c));
    dev.close();
    tmp.cleanup();
  });

  const disconnected = () => waitFor(() => !dev.server.connected, 'the server to see the disconnect');

  test('raw client: every reply has flags exactly 0x5 and the request id; negotiated values', async () => {
    const c = RawClient.connect(dev.path);
    cleanups.push(() => c.close());

    assert.equal(await c.u64(Request.GET_FEATURES), 0x1_7000_0001n);
    assert.equal(await c.u64(Request.GET_PROTOCOL_FEATURES), 0x2209n);
    c.send(Request.SET_PROTOCOL_FEATURES, encodeU64(ACKED_PROTOCOL));
    assert.equal(await c.u64(Request.GET_QUEUE_NUM), 2n);
    assert.equal(await c.ack(Request.SET_OWNER), 0n);

    const full = await c.call(
      Request.GET_CONFIG,
      encodeConfigPayload({ offset: 0, size: 8, flags: 0, data: new Uint8Array(8) }),
    );
    assert.equal(full.size, 12 + 8);
    assert.deepEqual(
      [...full.payload],
      [
        ...encodeConfigPayload({
          offset: 0,
          size: 8,
          flags: 0,
          data: Uint8Array.of(8, 0, 0, 0, NAMES_SIZE, 0, 0, 0),
        }),
      ],
    );
    const sub = await c.call(
      Request.GET_CONFIG,
      encodeConfigPayload({ offset: 4, size: 4, flags: 0, data: new Uint8Array(4) }),
    );
    assert.deepEqual(
      [...sub.payload],
      [...encodeConfigPayload({ offset: 4, size: 4, flags: 0, data: Uint8Array.of(NAMES_SIZE, 0, 0, 0) })],
    );
    const ngpio = await c.call(
      Request.GET_CONFIG,
      encodeConfigPayload({ offset: 0, size: 2, flags: 0, data: new Uint8Array(2) }),
    );
    assert.deepEqual([...ngpio.payload.subarray(12)], [8, 0]);
    assert.equal(ngpio.size, 14);

    // NEED_REPLY on a message with a reply of its own: that reply is the answer, flags still 0x5.
    const f = await c.call(Request.GET_FEATURES, undefined, [], 0x9);
    assert.deepEqual([...f.payload], [...encodeU64(WIRE_FEATURES)]);
    const cfg = await c.call(
      Request.GET_CONFIG,
      encodeConfigPayload({ offset: 0, size: 2, flags: 0, data: new Uint8Array(2) }),
      [],
      0x9,
    );
    assert.deepEqual([...cfg.payload.subarray(12)], [8, 0]);
    await c.expectSilence(20); // and no extra ack after it

    // QEMU's start sequence, every message with NEED_REPLY: each ack is 0 with flags 0x5.
    const s = await rawActivate(c);
    cleanups.push(() => s.dispose());
    assert.equal(dev.virtio.negotiated, DEVICE_FEATURES);
    assert.equal(dev.virtio.irqNegotiated, true);

    for (const index of [0, 1]) {
      const r = await c.call(Request.GET_VRING_BASE, encodeVringState({ index, num: 0 }));
      assert.equal(r.size, 8);
      assert.deepEqual(decodeVringState(r.payload), { index, num: 0 });
    }
    c.close();
    await disconnected();
  });

  test('VhostUserFrontend + Chip: features, names, directions, values, edge events', async () => {
    const fe = await VhostUserFrontend.connect(dev.path, 41, { timeoutMs: 3000 });
    cleanups.push(() => fe.close());
    assert.equal(fe.protocolFeatures, ACKED_PROTOCOL);
    assert.equal(fe.protocolFeatures & ~OFFERED_PROTOCOL, 0n);
    assert.equal(fe.queueCount, 2);
    assert.equal(await fe.deviceFeatures(), DEVICE_FEATURES);
    assert.equal(WIRE_FEATURES & ~DEVICE_FEATURES, PROTOCOL_BIT);

    const chip = await Chip.open(fe, CHIP_OPTS);
    assert.equal(chip.driver.features, DEVICE_FEATURES);
    assert.equal(chip.driver.irqSupported, true);
    assert.equal(dev.virtio.negotiated, DEVICE_FEATURES);
    assert.equal(dev.server.connected, true);
    assert.deepEqual(await chip.info(), { name: 'virtio-gpio', label: 'virtio-gpio', numLines: 8 });
    assert.deepEqual(chip.driver.names, ['led', 'button', '', 'irq', '', '', '', '']);

    const req = await chip.requestLines({
      consumer: 'happy',
      lines: {
        0: { direction: 'output', outputValue: 1 },
        1: { direction: 'input' },
        3: { direction: 'input', edge: 'both' },
      },
    });
    assert.equal(dev.lines.direction(0), Direction.OUT);
    assert.equal(dev.lines.output(0), 1);
    assert.equal(dev.lines.direction(1), Direction.IN);
    assert.equal(dev.lines.direction(3), Direction.IN);
    assert.deepEqual(await chip.lineInfo(3), {
      offset: 3,
      name: 'irq',
      used: true,
      consumer: 'happy',
      direction: 'input',
      edge: 'both',
    });
    assert.equal(dev.gpio.snapshot()[3].irqType, IrqType.EDGE_BOTH);
    await waitFor(() => dev.gpio.snapshot()[3].armed, 'line 3 armed');

    dev.lines.setInput(1, 1);
    assert.equal(await req.getValue(1), 1);
    dev.lines.setInput(1, 0);
    assert.equal(await req.getValue(1), 0);
    await req.setValue(0, 0);
    assert.equal(dev.lines.output(0), 0);
    assert.equal(await req.getValue(0), 0);

    const events = req.edgeEvents();
    dev.lines.setInput(3, 1);
    const e1 = await events.next();
    assert.equal(e1.done, false);
    assert.deepEqual(
      { ...e1.value, timestampNs: 0n },
      {
        type: 'rising',
        offset: 3,
        timestampNs: 0n,
        seqno: 1,
        lineSeqno: 1,
      },
    );
    dev.lines.setInput(3, 0); // masked until next(): latched, delivered at the re-queue
    const e2 = await events.next();
    assert.deepEqual(
      { ...e2.value, timestampNs: 0n },
      {
        type: 'falling',
        offset: 3,
        timestampNs: 0n,
        seqno: 2,
        lineSeqno: 2,
      },
    );
    assert.ok(e2.value.timestampNs > e1.value.timestampNs);
    await events.return?.();
    const c3 = dev.gpio.snapshot()[3].counters;
    assert.equal(c3.edges, 2);
    assert.equal(c3.delivered, 2);
    assert.equal(c3.invalid, 0);

    await req.release();
    assert.equal(dev.lines.direction(0), Direction.NONE);
    assert.equal(dev.lines.direction(3), Direction.NONE);
    assert.equal(dev.gpio.snapshot()[3].irqType, IrqType.NONE);
    const mark = dev.log.mark;
    await chip.close();
    await disconnected();
    assert.equal(dev.log.find('front-end disconnected; listening again', mark).length, 1);
  });

  test('a front-end that reconnects at once after closing is served (not refused as a second one)', async () => {
    for (let i = 0; i < 20; i++) {
      const first = RawClient.connect(dev.path);
      assert.equal(await first.u64(Request.GET_QUEUE_NUM), 2n);
      first.close();
      const next = RawClient.connect(dev.path); // same tick: the server may not have seen the close yet
      try {
        assert.equal(await next.u64(Request.GET_QUEUE_NUM), 2n, `round ${i}`);
      } finally {
        next.close();
      }
    }
    await disconnected();
  });

  test('a second front-end waits in the backlog while one is connected, and is served after it', async () => {
    const fe = await VhostUserFrontend.connect(dev.path, 41, { timeoutMs: 3000 });
    cleanups.push(() => fe.close());
    const chip = await Chip.open(fe, CHIP_OPTS);
    const next = RawClient.connect(dev.path);
    cleanups.push(() => next.close());
    next.send(Request.GET_FEATURES);
    await next.expectSilence(200); // not accepted, not refused

    const req = await chip.requestLines({ lines: { 5: { direction: 'input' } } });
    dev.lines.setInput(5, 1);
    assert.equal(await req.getValue(5), 1, 'the first front-end keeps working');
    await chip.close();
    await fe.close();
    const reply = await next.next();
    assert.ok(reply, 'the waiting front-end is served once the first has gone');
    assert.equal(reply.request, Request.GET_FEATURES);
    next.close();
    await disconnected();
  });
});
