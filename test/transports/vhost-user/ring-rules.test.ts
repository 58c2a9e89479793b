// vhost-user ring state rules (docs/protocol.md §7) seen from a raw front-end that owns guest
// memory, rings, kick and call eventfds: stop/start, held eventq buffers, memory table re-sends,
// EVENT_IDX notification suppression (counted on the call eventfd).
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Direction, IrqStatus, IrqType, MessageType, Status } from '../../../src/protocol/constants.ts';
import {
  Request,
  encodeMemoryTable,
  encodeU64,
  encodeVringState,
} from '../../../src/transports/vhost-user/message.ts';
import { AvailFlag } from '../../../src/virtqueue/split-ring.ts';
import {
  EVENT_IDX,
  MiniDriver,
  RawClient,
  WIRE_FEATURES,
  rawActivate,
  serveGpio,
  signals,
  tempDir,
  waitFor,
  type ActivateOptions,
  type RawSession,
  type ServedGpio,
} from './harness.ts';

const { GET_DIRECTION, SET_DIRECTION, SET_IRQ_TYPE, GET_VALUE } = MessageType;
const OK = { status: Status.OK, value: 0, len: 2 };

describe('vhost-user ring rules', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  let dev: ServedGpio;

  before(() => {
    dev = serveGpio(`${tmp.dir}/rings.sock`, 8);
  });
  after(() => {
    dev.close();
    tmp.cleanup();
  });

  async function session(
    t: TestContext,
    opts: ActivateOptions = {},
  ): Promise<{ c: RawClient; s: RawSession; d: MiniDriver }> {
    await waitFor(() => !dev.server.connected, 'the device to be free');
    const c = RawClient.connect(dev.path);
    await c.handshake();
    const s = await rawActivate(c, opts);
    t.after(async () => {
      c.close();
      s.dispose();
      await waitFor(() => !dev.server.connected, 'the disconnect');
    });
    const d = new MiniDriver(s, ((opts.features ?? WIRE_FEATURES) & EVENT_IDX) !== 0n);
    return { c, s, d };
  }

  const getBase = async (c: RawClient, index: number): Promise<number> => {
    const r = await c.call(Request.GET_VRING_BASE, encodeVringState({ index, num: 0 }));
    assert.equal(r.size, 8);
    return new DataView(r.payload.buffer, r.payload.byteOffset).getUint32(4, true);
  };

  /** SET_VRING_BASE then SET_VRING_KICK (the same eventfd again, as QEMU does). */
  const restart = async (c: RawClient, s: RawSession, index: number, base: number) => {
    assert.equal(await c.ack(Request.SET_VRING_BASE, encodeVringState({ index, num: base })), 0n);
    assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(BigInt(index)), [s.kick[index]]), 0n);
  };

  /** Input line with an edge type enabled and its eventq buffer held by the device. */
  async function armedEdge(d: MiniDriver, line: number, type: number = IrqType.EDGE_RISING) {
    assert.deepEqual(await d.request(SET_DIRECTION, line, Direction.IN), OK);
    assert.deepEqual(await d.request(SET_IRQ_TYPE, line, type), OK);
    d.arm(line);
    await waitFor(() => dev.gpio.snapshot()[line].armed, `line ${line} armed`);
  }

  test('GET_VRING_BASE stops the ring and returns the next avail index; kicks wait; restart resumes', async (t) => {
    const { c, s, d } = await session(t);
    for (let line = 0; line < 5; line++)
      assert.deepEqual(await d.request(GET_DIRECTION, line), { ...OK, value: Direction.NONE });
    assert.equal(await getBase(c, 0), 5);
    assert.equal(await getBase(c, 0), 5, 'asking again while stopped gives the same index');

    signals(s.call[0]);
    d.place(SET_DIRECTION, 6, Direction.OUT);
    d.kick(0);
    await sleep(60);
    assert.equal(d.rqRing.usedIdx, 5, 'a stopped ring is not processed');
    assert.equal(dev.lines.direction(6), Direction.NONE);
    assert.equal(signals(s.call[0]), 0);

    await restart(c, s, 0, 5);
    assert.deepEqual(await d.collectRequests(5, 1), [OK]);
    assert.equal(dev.lines.direction(6), Direction.OUT);
    assert.deepEqual(await d.request(GET_DIRECTION, 6), { ...OK, value: Direction.OUT });
    assert.equal(await getBase(c, 0), 7);
  });

  test('SET_VRING_ENABLE 0 holds processing back; 1 resumes from where it stopped', async (t) => {
    const { c, d } = await session(t);
    assert.deepEqual(await d.request(GET_DIRECTION, 0), OK);
    assert.equal(await c.ack(Request.SET_VRING_ENABLE, encodeVringState({ index: 0, num: 0 })), 0n);
    d.place(SET_DIRECTION, 7, Direction.IN);
    d.kick(0);
    await sleep(60);
    assert.equal(d.rqRing.usedIdx, 1);
    assert.equal(dev.lines.direction(7), Direction.NONE);
    assert.equal(await c.ack(Request.SET_VRING_ENABLE, encodeVringState({ index: 0, num: 1 })), 0n);
    assert.deepEqual(await d.collectRequests(1, 1), [OK]);
    assert.equal(dev.lines.direction(7), Direction.IN);
    assert.equal(await getBase(c, 0), 2);
  });

  test('held eventq buffers survive a stop/start with a non-zero base; a latched edge comes after restart', async (t) => {
    const { c, s, d } = await session(t);
    await armedEdge(d, 3);
    assert.equal(await getBase(c, 0), 2);
    assert.equal(await getBase(c, 1), 1);
    signals(s.call[1]);

    dev.lines.setInput(3, 1); // while suspended: latched, nothing written, nobody notified
    const held = dev.gpio.snapshot()[3];
    assert.deepEqual(
      [held.armed, held.latched, held.counters.edges, held.counters.latched],
      [true, true, 1, 1],
    );
    await sleep(30);
    assert.equal(d.eqRing.usedIdx, 0);
    assert.equal(signals(s.call[1]), 0);

    await restart(c, s, 1, 1);
    assert.deepEqual(await d.collectEvents(1), [[3, IrqStatus.VALID, 1]]);
    assert.equal(signals(s.call[1]), 1);
    const after = dev.gpio.snapshot()[3];
    assert.deepEqual([after.armed, after.latched, after.counters.delivered], [false, false, 1]);

    await restart(c, s, 0, 2);
    assert.deepEqual(await d.request(GET_VALUE, 3), { ...OK, value: 1 });
  });

  test('a hand-back while only the eventq is stopped is written when it restarts', async (t) => {
    const { c, s, d } = await session(t);
    await armedEdge(d, 2);
    assert.equal(await getBase(c, 1), 1);
    // The requestq still runs: disabling hands the held buffer back INVALID — later.
    assert.deepEqual(await d.request(SET_IRQ_TYPE, 2, IrqType.NONE), OK);
    assert.equal(dev.gpio.snapshot()[2].armed, false);
    await sleep(30);
    assert.equal(d.eqRing.usedIdx, 0);
    await restart(c, s, 1, 1);
    assert.deepEqual(await d.collectEvents(1), [[2, IrqStatus.INVALID, 1]]);
  });

  test('a restart from base 0 (guest re-initialised) drops held buffers and resets interrupts', async (t) => {
    const { c, s, d } = await session(t);
    await armedEdge(d, 3);
    dev.lines.setInput(3, 0);
    assert.equal(await getBase(c, 0), 2);
    assert.equal(await getBase(c, 1), 1);
    dev.lines.setInput(3, 1); // latched while stopped
    assert.equal(dev.gpio.snapshot()[3].latched, true);

    d.reinit(); // zeroed rings
    const mark = dev.log.mark;
    await restart(c, s, 0, 0);
    await restart(c, s, 1, 0);
    assert.equal(dev.log.find('rings restarted from index 0: new driver, interrupts reset', mark).length, 1);
    const l3 = dev.gpio.snapshot()[3];
    assert.deepEqual(
      [l3.direction, l3.value, l3.irqType, l3.armed, l3.latched],
      [Direction.IN, 1, IrqType.NONE, false, false],
    );
    await sleep(30);
    assert.equal(d.eqRing.usedIdx, 0, 'the dropped buffer is never handed back');

    assert.deepEqual(await d.request(GET_DIRECTION, 3), { ...OK, value: Direction.IN });
    // Type NONE on the device: another edge type is accepted directly.
    assert.deepEqual(await d.request(SET_IRQ_TYPE, 3, IrqType.EDGE_FALLING), OK);
    d.arm(3);
    await waitFor(() => dev.gpio.snapshot()[3].armed, 'line 3 armed again');
    dev.lines.setInput(3, 0);
    assert.deepEqual(await d.collectEvents(1), [[3, IrqStatus.VALID, 1]]);
  });

  test('re-sending an identical SET_MEM_TABLE keeps held buffers; a different table drops them', async (t) => {
    const { c, s, d } = await session(t);
    await armedEdge(d, 5);
    const mark = dev.log.mark;
    assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable(s.table), [s.memfd]), 0n);
    assert.equal(dev.log.find('memory table mapped', mark).length, 0, 'not mapped again');
    assert.equal(dev.gpio.snapshot()[5].armed, true);
    dev.lines.setInput(5, 1);
    assert.deepEqual(await d.collectEvents(1), [[5, IrqStatus.VALID, 1]]);

    d.arm(5);
    await waitFor(() => dev.gpio.snapshot()[5].armed, 'line 5 armed again');
    const smaller = [{ ...s.table[0], memorySize: s.table[0].memorySize / 2n }];
    assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable(smaller), [s.memfd]), 0n);
    assert.deepEqual(
      dev.log.find('memory table mapped', mark).map((e) => e.fields),
      [{ regions: 1, bytes: 512 * 1024 }],
    );
    assert.equal(dev.gpio.snapshot()[5].armed, false, 'held buffers are dropped with the old mapping');
    // The rings run on in the new mapping.
    assert.deepEqual(await d.request(GET_VALUE, 5), { ...OK, value: 1 });
    d.arm(5); // the dropped buffer is never returned: the driver queues a new one
    await waitFor(() => dev.gpio.snapshot()[5].armed, 'line 5 armed in the new mapping');
    dev.lines.setInput(5, 0);
    dev.lines.setInput(5, 1);
    assert.deepEqual(await d.collectEvents(2), [[5, IrqStatus.VALID, 1]]);
  });

  test('RESET_DEVICE stops the rings and drops held buffers without touching memory; lines stay', async (t) => {
    const { c, d } = await session(t);
    await c.ack(Request.SET_PROTOCOL_FEATURES, encodeU64(0x2209n)); // RESET_DEVICE is offered: take it
    await armedEdge(d, 4);
    dev.lines.setInput(4, 0);
    assert.equal(await c.ack(Request.RESET_DEVICE), 0n);
    const l4 = dev.gpio.snapshot()[4];
    assert.deepEqual([l4.direction, l4.irqType, l4.armed], [Direction.IN, IrqType.NONE, false]);
    dev.lines.setInput(4, 1);
    d.place(GET_DIRECTION, 4);
    d.kick(0);
    await sleep(40);
    assert.deepEqual([d.rqRing.usedIdx, d.eqRing.usedIdx], [2, 0], 'nothing processed or handed back');
    assert.equal(dev.gpio.snapshot()[4].latched, false);
    // The rings were forgotten: GET_VRING_BASE reports 0, and they must be set up again.
    assert.equal(await getBase(c, 0), 0);
  });

  test('EVENT_IDX: the device notifies only when the used index passes used_event', async (t) => {
    const { s, d } = await session(t, { queueSize: 16 });
    const rq = d.rqRing;
    signals(s.call[0]);
    const batch = async (n: number, upTo: number) => {
      for (let i = 0; i < n; i++) d.place(GET_DIRECTION, i);
      d.kick(0);
      await waitFor(() => rq.usedIdx === upTo, `used idx ${upTo}`);
      await sleep(5);
      return signals(s.call[0]);
    };
    assert.equal(rq.usedEvent, 0);
    assert.equal(await batch(3, 3), 1, 'used idx passed used_event 0');
    assert.equal(await batch(3, 6), 0, 'used_event 0 was passed already');
    assert.equal(rq.availEvent, 6, 'the device asks for a kick at the next avail index');
    d.rq.collect(); // used_event = 6
    assert.equal(rq.usedEvent, 6);
    assert.equal(await batch(1, 7), 1);
    d.rq.collect();
    rq.usedEvent = 10;
    assert.equal(await batch(1, 8), 0);
    assert.equal(await batch(1, 9), 0);
    assert.equal(await batch(1, 10), 0);
    assert.equal(await batch(1, 11), 1, 'used idx 11 passed used_event 10');
    assert.equal(rq.availEvent, 11);
  });

  test('without EVENT_IDX: one notification per processed batch, none with NO_INTERRUPT', async (t) => {
    const { s, d } = await session(t, { features: WIRE_FEATURES & ~EVENT_IDX });
    assert.equal(dev.virtio.negotiated, 0x1_1000_0001n);
    const rq = d.rqRing;
    signals(s.call[0]);
    const batch = async (n: number, upTo: number) => {
      for (let i = 0; i < n; i++) d.place(GET_DIRECTION, i);
      d.kick(0);
      await waitFor(() => rq.usedIdx === upTo, `used idx ${upTo}`);
      await sleep(5);
      return signals(s.call[0]);
    };
    assert.equal(await batch(3, 3), 1);
    assert.equal(await batch(1, 4), 1);
    rq.availFlags = AvailFlag.NO_INTERRUPT;
    assert.equal(await batch(2, 6), 0);
    rq.availFlags = 0;
    assert.equal(await batch(1, 7), 1);
    assert.equal(rq.availEvent, 0, 'no avail_event written without EVENT_IDX');
  });
});
