// VirtioGpioDevice: the ring glue. Most tests drive the rings by hand with a DriverQueue (odd
// descriptor layouts, malformed rings, exact used entries); some go through LoopbackTransport and
// a real GpioDriver. Test names cite docs/protocol.md sections (§N) and device rules (DN).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import { GpioDriver } from '../../src/driver/gpio-driver.ts';
import {
  Direction,
  EVENT_QUEUE,
  Feature,
  IrqStatus,
  IrqType,
  MessageType,
  REQUEST_QUEUE,
  Status,
  bit,
} from '../../src/protocol/constants.ts';
import { encodeIrqRequest, encodeRequest } from '../../src/protocol/messages.ts';
import { LoopbackTransport } from '../../src/transports/loopback/loopback-transport.ts';
import type { DescriptorChain } from '../../src/virtqueue/descriptor-chain.ts';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DriverQueue, type BufferLayout, type UsedBuffer } from '../../src/virtqueue/driver-queue.ts';
import { GuestAllocator } from '../../src/virtqueue/guest-allocator.ts';
import { GuestMemory } from '../../src/virtqueue/guest-memory.ts';
import { DESC_SIZE, DescFlag, contiguousLayout } from '../../src/virtqueue/split-ring.ts';
import { VirtqueueError } from '../../src/virtqueue/virtqueue-error.ts';

const { GET_LINE_NAMES, GET_DIRECTION, SET_DIRECTION, GET_VALUE, SET_VALUE, SET_IRQ_TYPE } = MessageType;
const { OK, ERR } = Status;
const { VALID, INVALID } = IrqStatus;
const BASE = 0x10000;
const QSIZE = 16;

interface HarnessOptions {
  ngpio?: number;
  names?: readonly string[];
  /** Features the driver acknowledges (default: all offered). */
  features?: bigint;
  irq?: boolean;
}

/** A device with both queues started on hand-driven rings; notifications are logged in order. */
function harness(opts: HarnessOptions = {}) {
  const lines = new SimulatedLines(opts.ngpio ?? 4, opts.names ?? []);
  const model = new GpioDevice<DescriptorChain>(lines);
  const dev = new VirtioGpioDevice(model, { irq: opts.irq });
  const resets: Array<[number, Error]> = [];
  dev.onNeedsReset = (q, e) => resets.push([q, e]);
  const features = (opts.features ?? dev.offeredFeatures) & dev.offeredFeatures;
  dev.setFeatures(features);
  const ringOpts = {
    eventIdx: (features & bit(Feature.RING_EVENT_IDX)) !== 0n,
    indirect: (features & bit(Feature.RING_INDIRECT_DESC)) !== 0n,
  };
  const mem = new GuestMemory([{ guestPhysAddr: BASE, bytes: new Uint8Array(1 << 16) }]);
  const rqLayout = contiguousLayout(QSIZE, BASE);
  const eqLayout = contiguousLayout(QSIZE, BASE + rqLayout.bytes + 64);
  const heap = BASE + rqLayout.bytes + eqLayout.bytes + 128;
  const alloc = new GuestAllocator(heap, BASE + (1 << 16) - heap);
  const rq = new DriverQueue<string>(mem, rqLayout, alloc, ringOpts);
  const eq = new DriverQueue<string>(mem, eqLayout, alloc, ringOpts);
  const notes: string[] = [];
  const rqUsedIdx = () => mem.dataView(rqLayout.usedAddr, 4).getUint16(2, true);
  const eqUsedIdx = () => mem.dataView(eqLayout.usedAddr, 4).getUint16(2, true);
  dev.startQueue(REQUEST_QUEUE, new DeviceQueue(mem, rqLayout, ringOpts), () =>
    notes.push(`req used=${rqUsedIdx()} evt used=${eqUsedIdx()}`),
  );
  dev.startQueue(EVENT_QUEUE, new DeviceQueue(mem, eqLayout, ringOpts), () =>
    notes.push(`evt used=${eqUsedIdx()} req used=${rqUsedIdx()}`),
  );
  notes.length = 0; // starting a queue signals once (nothing used yet): not what these tests look at

  /** Places one request chain, kicks, and returns what came back on the requestq. */
  const send = (
    req: { type: number; gpio: number; value?: number },
    layout: Partial<BufferLayout> = {},
  ): UsedBuffer<string>[] => {
    rq.add(
      {
        readable: layout.readable ?? [encodeRequest({ value: 0, ...req })],
        writable: layout.writable ?? [2],
        indirect: layout.indirect ?? false,
      },
      `${req.type}:${req.gpio}`,
    );
    dev.kick(REQUEST_QUEUE);
    return rq.collect();
  };
  const reply = (req: { type: number; gpio: number; value?: number }, layout: Partial<BufferLayout> = {}) => {
    const used = send(req, layout);
    assert.equal(used.length, 1);
    return { len: used[0].len, bytes: [...used[0].data] };
  };
  /** Queues an eventq buffer for a line and kicks; returns the eventq chains that came back. */
  const arm = (gpio: number, tag = `irq${gpio}`, layout: Partial<BufferLayout> = {}) => {
    eq.add(
      {
        readable: layout.readable ?? [encodeIrqRequest(gpio)],
        writable: layout.writable ?? [1],
        indirect: layout.indirect ?? false,
      },
      tag,
    );
    dev.kick(EVENT_QUEUE);
    return eq.collect().map((u) => ({ tag: u.token, len: u.len, status: u.data[0] }));
  };
  return { lines, model, dev, mem, rq, eq, rqLayout, eqLayout, notes, resets, send, reply, arm, rqUsedIdx };
}

describe('D2 features', () => {
  test('offers VERSION_1, INDIRECT_DESC, EVENT_IDX and F_IRQ; irq: false drops F_IRQ', () => {
    const all = bit(32) | bit(28) | bit(29) | bit(0);
    assert.equal(harness().dev.offeredFeatures, all);
    assert.equal(harness({ irq: false }).dev.offeredFeatures, all & ~bit(0));
  });

  test('without F_IRQ negotiated SET_IRQ_TYPE is ERR and eventq buffers come back INVALID', () => {
    const h = harness({ features: bit(Feature.VERSION_1) });
    assert.equal(h.dev.irqNegotiated, false);
    h.reply({ type: SET_DIRECTION, gpio: 0, value: Direction.IN });
    assert.deepEqual(h.reply({ type: SET_IRQ_TYPE, gpio: 0, value: IrqType.EDGE_BOTH }), {
      len: 2,
      bytes: [ERR, 0],
    });
    assert.deepEqual(h.arm(0), [{ tag: 'irq0', len: 1, status: INVALID }]);
  });

  test('readConfig: any sub-range of the 8 bytes, null outside (D1)', () => {
    const h = harness({ ngpio: 3, names: ['a', 'b', 'c'] });
    assert.deepEqual([...(h.dev.readConfig(0, 8) ?? [])], [3, 0, 0, 0, 6, 0, 0, 0]);
    assert.deepEqual([...(h.dev.readConfig(4, 4) ?? [])], [6, 0, 0, 0]);
    assert.deepEqual([...(h.dev.readConfig(0, 2) ?? [])], [3, 0]);
    assert.equal(h.dev.readConfig(6, 4), null);
    assert.equal(h.dev.readConfig(-1, 2), null);
  });
});

describe('requestq used lengths (§1, D5)', () => {
  test('every ordinary message: used length 2, OK or ERR', () => {
    const h = harness();
    assert.deepEqual(h.reply({ type: GET_DIRECTION, gpio: 0 }), { len: 2, bytes: [OK, Direction.NONE] });
    assert.deepEqual(h.reply({ type: SET_DIRECTION, gpio: 0, value: Direction.OUT }), {
      len: 2,
      bytes: [OK, 0],
    });
    assert.deepEqual(h.reply({ type: SET_VALUE, gpio: 0, value: 1 }), { len: 2, bytes: [OK, 0] });
    assert.deepEqual(h.reply({ type: GET_VALUE, gpio: 0 }), { len: 2, bytes: [OK, 1] });
    assert.deepEqual(h.reply({ type: SET_DIRECTION, gpio: 1, value: Direction.IN }), {
      len: 2,
      bytes: [OK, 0],
    });
    assert.deepEqual(h.reply({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.LEVEL_LOW }), {
      len: 2,
      bytes: [OK, 0],
    });
    assert.deepEqual(h.reply({ type: GET_VALUE, gpio: 9 }), { len: 2, bytes: [ERR, 0] });
    assert.deepEqual(h.reply({ type: SET_VALUE, gpio: 0, value: 2 }), { len: 2, bytes: [ERR, 0] });
  });

  test('a writable area bigger than the response: used length is still 2', () => {
    const h = harness();
    h.lines.setInput(2, 1);
    assert.deepEqual(h.reply({ type: GET_VALUE, gpio: 2 }, { writable: [8] }), {
      len: 2,
      bytes: [OK, 1, 0, 0, 0, 0, 0, 0],
    });
  });

  test('GET_LINE_NAMES: used length 1 + N, the names block after the status', () => {
    const h = harness({ ngpio: 3, names: ['led', '', 'b'] });
    const block = [0x6c, 0x65, 0x64, 0, 0, 0x62, 0];
    assert.deepEqual(h.reply({ type: GET_LINE_NAMES, gpio: 0 }, { writable: [1 + block.length] }), {
      len: 8,
      bytes: [OK, ...block],
    });
    // The same, scattered over three writable descriptors.
    const used = h.send({ type: GET_LINE_NAMES, gpio: 0 }, { writable: [1, 3, 4] });
    assert.equal(used[0].len, 8);
    assert.deepEqual([...used[0].data], [OK, ...block]);
  });

  test('D11 GET_LINE_NAMES with a writable area smaller than 1 + N: ERR', () => {
    const h = harness({ ngpio: 3, names: ['led', '', 'b'] }); // N = 7
    assert.deepEqual(h.reply({ type: GET_LINE_NAMES, gpio: 0 }, { writable: [7] }), {
      len: 7,
      bytes: [ERR, 0, 0, 0, 0, 0, 0],
    });
    assert.deepEqual(h.reply({ type: GET_LINE_NAMES, gpio: 0 }, { writable: [2] }), {
      len: 2,
      bytes: [ERR, 0],
    });
  });

  test('an ordinary response with only 1 writable byte: ERR, used length 1', () => {
    const h = harness();
    assert.deepEqual(h.reply({ type: GET_DIRECTION, gpio: 0 }, { writable: [1] }), { len: 1, bytes: [ERR] });
  });
});

describe('D3 requests parsed by bytes, whatever the layout', () => {
  test('request split over 3 descriptors, response over 2', () => {
    const h = harness();
    h.reply({ type: SET_DIRECTION, gpio: 3, value: Direction.IN });
    h.lines.setInput(3, 1);
    const req = encodeRequest({ type: GET_VALUE, gpio: 3, value: 0 });
    assert.deepEqual(
      h.reply(
        { type: GET_VALUE, gpio: 3 },
        { readable: [req.subarray(0, 2), req.subarray(2, 4), req.subarray(4)], writable: [1, 1] },
      ),
      { len: 2, bytes: [OK, 1] },
    );
    // An odd split: 1 + 6 + 1 bytes.
    const set = encodeRequest({ type: SET_DIRECTION, gpio: 2, value: Direction.OUT });
    assert.deepEqual(
      h.reply(
        { type: SET_DIRECTION, gpio: 2 },
        { readable: [set.subarray(0, 1), set.subarray(1, 7), set.subarray(7)] },
      ),
      { len: 2, bytes: [OK, 0] },
    );
    assert.equal(h.lines.direction(2), Direction.OUT);
  });

  test('indirect descriptors', () => {
    const h = harness();
    h.lines.setInput(1, 1);
    const req = encodeRequest({ type: GET_VALUE, gpio: 1, value: 0 });
    assert.deepEqual(h.reply({ type: GET_VALUE, gpio: 1 }, { indirect: true }), { len: 2, bytes: [OK, 1] });
    assert.deepEqual(
      h.reply(
        { type: GET_VALUE, gpio: 1 },
        {
          indirect: true,
          readable: [req.subarray(0, 3), req.subarray(3, 5), req.subarray(5)],
          writable: [1, 1],
        },
      ),
      { len: 2, bytes: [OK, 1] },
    );
    assert.deepEqual(h.resets, []);
  });

  test('short request: ERR with used length 2', () => {
    const h = harness();
    const req = encodeRequest({ type: SET_DIRECTION, gpio: 0, value: Direction.OUT });
    assert.deepEqual(h.reply({ type: SET_DIRECTION, gpio: 0 }, { readable: [req.subarray(0, 6)] }), {
      len: 2,
      bytes: [ERR, 0],
    });
    assert.deepEqual(
      h.reply({ type: SET_DIRECTION, gpio: 0 }, { readable: [req.subarray(0, 4), req.subarray(4, 7)] }),
      { len: 2, bytes: [ERR, 0] },
    );
    assert.equal(h.lines.direction(0), Direction.NONE, 'nothing was applied');
  });

  test('unknown message type: ERR with used length 2', () => {
    const h = harness();
    for (const type of [0, 7, 0x100])
      assert.deepEqual(h.reply({ type, gpio: 0 }), { len: 2, bytes: [ERR, 0] }, `type ${type}`);
  });

  test('D6 requests in one kick are answered in ring order', () => {
    const h = harness();
    const order = [
      { type: SET_DIRECTION, gpio: 0, value: Direction.OUT },
      { type: SET_VALUE, gpio: 0, value: 1 },
      { type: GET_VALUE, gpio: 0 },
      { type: SET_VALUE, gpio: 0, value: 0 },
      { type: GET_VALUE, gpio: 0 },
    ];
    order.forEach((r, i) =>
      h.rq.add({ readable: [encodeRequest({ value: 0, ...r })], writable: [2] }, `#${i}`),
    );
    h.dev.kick(REQUEST_QUEUE);
    const used = h.rq.collect();
    assert.deepEqual(
      used.map((u) => [u.token, u.len, ...u.data]),
      [
        ['#0', 2, OK, 0],
        ['#1', 2, OK, 0],
        ['#2', 2, OK, 1],
        ['#3', 2, OK, 0],
        ['#4', 2, OK, 0],
      ],
    );
    assert.deepEqual(h.notes, ['req used=5 evt used=0'], 'one notification for the batch');
  });
});

describe('eventq (§1)', () => {
  test('used length 1 for VALID and for INVALID', () => {
    const h = harness();
    h.reply({ type: SET_DIRECTION, gpio: 0, value: Direction.IN });
    h.reply({ type: SET_IRQ_TYPE, gpio: 0, value: IrqType.EDGE_RISING });
    assert.deepEqual(h.arm(0, 'a'), []);
    assert.deepEqual(h.arm(0, 'b'), [{ tag: 'b', len: 1, status: INVALID }]);
    h.lines.setInput(0, 1);
    assert.deepEqual(
      h.eq.collect().map((u) => [u.token, u.len, u.data[0]]),
      [['a', 1, VALID]],
    );
    assert.deepEqual(h.arm(1, 'c'), [{ tag: 'c', len: 1, status: INVALID }], 'type NONE');
    assert.deepEqual(h.arm(9, 'd'), [{ tag: 'd', len: 1, status: INVALID }], 'bad gpio');
  });

  test('buffers with bad sizes come back INVALID at once', () => {
    const h = harness();
    h.reply({ type: SET_IRQ_TYPE, gpio: 0, value: IrqType.EDGE_RISING });
    assert.deepEqual(h.arm(0, 'short', { readable: [Uint8Array.of(0)] }), [
      { tag: 'short', len: 1, status: INVALID },
    ]);
    assert.deepEqual(h.arm(0, 'no-writable', { writable: [] }), [
      { tag: 'no-writable', len: 0, status: undefined },
    ]);
    assert.equal(h.model.snapshot()[0].armed, false);
    // A good buffer split over two readable descriptors and indirect is accepted.
    assert.deepEqual(
      h.arm(0, 'split', { readable: [Uint8Array.of(0), Uint8Array.of(0)], indirect: true }),
      [],
    );
    assert.equal(h.model.snapshot()[0].armed, true);
  });

  test('§5 SET_IRQ_TYPE NONE: the INVALID eventq entry is written and signalled before the reply', () => {
    const h = harness();
    h.reply({ type: SET_DIRECTION, gpio: 2, value: Direction.IN });
    h.reply({ type: SET_IRQ_TYPE, gpio: 2, value: IrqType.EDGE_BOTH });
    h.arm(2, 'held');
    h.notes.length = 0;
    const before = h.rqUsedIdx();
    const used = h.send({ type: SET_IRQ_TYPE, gpio: 2, value: IrqType.NONE });
    assert.deepEqual(
      used.map((u) => [u.len, ...u.data]),
      [[2, OK, 0]],
    );
    // When the eventq was signalled, the requestq used index had not moved yet.
    assert.deepEqual(h.notes, [`evt used=1 req used=${before}`, `req used=${before + 1} evt used=1`]);
    assert.deepEqual(
      h.eq.collect().map((u) => [u.token, u.len, u.data[0]]),
      [['held', 1, INVALID]],
    );
  });

  test('D16 a hand-back while the eventq is stopped is written only when it starts again', () => {
    const h = harness();
    h.reply({ type: SET_IRQ_TYPE, gpio: 0, value: IrqType.EDGE_RISING });
    h.arm(0, 'held');
    h.dev.stopQueue(EVENT_QUEUE, false);
    h.lines.setInput(0, 1); // suspended: latched, not delivered
    h.reply({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.EDGE_RISING });
    assert.deepEqual(h.eq.collect(), []);
    assert.equal(h.model.snapshot()[0].latched, true);
    h.notes.length = 0;
    h.dev.startQueue(
      EVENT_QUEUE,
      new DeviceQueue(h.mem, h.eqLayout, { eventIdx: true, indirect: true, nextAvail: 1, nextUsed: 0 }),
      () => h.notes.push('evt'),
    );
    assert.deepEqual(
      h.eq.collect().map((u) => [u.token, u.len, u.data[0]]),
      [['held', 1, VALID]],
    );
    assert.deepEqual(h.notes, ['evt']);
  });

  test('stopQueue(drop) forgets held buffers: nothing is ever written for them', () => {
    const h = harness();
    h.reply({ type: SET_IRQ_TYPE, gpio: 0, value: IrqType.EDGE_RISING });
    h.arm(0, 'held');
    h.dev.stopQueue(EVENT_QUEUE, true);
    assert.equal(h.model.snapshot()[0].armed, false);
    h.lines.setInput(0, 1);
    h.dev.startQueue(
      EVENT_QUEUE,
      new DeviceQueue(h.mem, h.eqLayout, { eventIdx: true, indirect: true, nextAvail: 1, nextUsed: 0 }),
      () => h.notes.push('evt'),
    );
    assert.deepEqual(h.eq.collect(), []);
  });
});

describe('malformed rings: onNeedsReset, no throw', () => {
  /** Publishes a raw head index in the avail ring, as a buggy driver would. */
  const publishHead = (mem: GuestMemory, layout: { availAddr: number; size: number }, head: number) => {
    const avail = mem.dataView(layout.availAddr, 6 + 2 * layout.size);
    const idx = avail.getUint16(2, true);
    avail.setUint16(4 + 2 * (idx % layout.size), head, true);
    avail.setUint16(2, (idx + 1) & 0xffff, true);
  };
  const writeDesc = (mem: GuestMemory, descAddr: number, i: number, d: [number, number, number, number]) => {
    const v = mem.dataView(descAddr + i * DESC_SIZE, DESC_SIZE);
    v.setBigUint64(0, BigInt(d[0]), true);
    v.setUint32(8, d[1], true);
    v.setUint16(12, d[2], true);
    v.setUint16(14, d[3], true);
  };

  test('requestq head out of range', () => {
    const h = harness();
    publishHead(h.mem, h.rqLayout, QSIZE + 3);
    assert.doesNotThrow(() => h.dev.kick(REQUEST_QUEUE));
    assert.equal(h.resets.length, 1);
    assert.equal(h.resets[0][0], REQUEST_QUEUE);
    assert.ok(h.resets[0][1] instanceof VirtqueueError);
    assert.equal((h.resets[0][1] as VirtqueueError).kind, 'head-range');
    // The queue is dead from then on: later kicks do nothing and do not throw.
    h.rq.add({ readable: [encodeRequest({ type: GET_DIRECTION, gpio: 0, value: 0 })], writable: [2] }, 'x');
    assert.doesNotThrow(() => h.dev.kick(REQUEST_QUEUE));
    assert.equal(h.resets.length, 1);
    assert.deepEqual(h.notes, []);
  });

  test('descriptor loop, buffer outside memory, readable after writable', () => {
    const cases: Array<[string, (h: ReturnType<typeof harness>) => void]> = [
      [
        'loop',
        (h) => {
          writeDesc(h.mem, h.rqLayout.descAddr, 5, [BASE + 0x8000, 8, DescFlag.NEXT, 6]);
          writeDesc(h.mem, h.rqLayout.descAddr, 6, [BASE + 0x8000, 8, DescFlag.NEXT, 5]);
          publishHead(h.mem, h.rqLayout, 5);
        },
      ],
      [
        'out-of-bounds',
        (h) => {
          writeDesc(h.mem, h.rqLayout.descAddr, 5, [0x9000_0000, 8, 0, 0]);
          publishHead(h.mem, h.rqLayout, 5);
        },
      ],
      [
        'order',
        (h) => {
          writeDesc(h.mem, h.rqLayout.descAddr, 5, [BASE + 0x8010, 2, DescFlag.NEXT | DescFlag.WRITE, 6]);
          writeDesc(h.mem, h.rqLayout.descAddr, 6, [BASE + 0x8000, 8, 0, 0]);
          publishHead(h.mem, h.rqLayout, 5);
        },
      ],
      [
        'avail-index',
        (h) => {
          const avail = h.mem.dataView(h.rqLayout.availAddr, 4);
          avail.setUint16(2, QSIZE + 1, true);
        },
      ],
    ];
    for (const [kind, corrupt] of cases) {
      const h = harness();
      corrupt(h);
      assert.doesNotThrow(() => h.dev.kick(REQUEST_QUEUE), kind);
      assert.deepEqual(
        h.resets.map(([q, e]) => [q, (e as VirtqueueError).kind]),
        [[REQUEST_QUEUE, kind]],
      );
    }
  });

  test('indirect descriptor without INDIRECT_DESC negotiated', () => {
    const h = harness({ features: bit(Feature.VERSION_1) | bit(Feature.GPIO_F_IRQ) });
    writeDesc(h.mem, h.rqLayout.descAddr, 5, [BASE + 0x8000, 32, DescFlag.INDIRECT, 0]);
    publishHead(h.mem, h.rqLayout, 5);
    assert.doesNotThrow(() => h.dev.kick(REQUEST_QUEUE));
    assert.deepEqual(
      h.resets.map(([q, e]) => [q, (e as VirtqueueError).kind]),
      [[REQUEST_QUEUE, 'indirect']],
    );
  });

  test('malformed eventq: reset for queue 1; the requestq keeps working', () => {
    const h = harness();
    publishHead(h.mem, h.eqLayout, 0xffff);
    assert.doesNotThrow(() => h.dev.kick(EVENT_QUEUE));
    assert.deepEqual(
      h.resets.map(([q, e]) => [q, (e as VirtqueueError).kind]),
      [[EVENT_QUEUE, 'head-range']],
    );
    assert.deepEqual(h.reply({ type: GET_DIRECTION, gpio: 0 }), { len: 2, bytes: [OK, 0] });
  });

  test('through LoopbackTransport: a corrupted requestq reaches onNeedsReset', async () => {
    const lines = new SimulatedLines(2);
    const dev = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines));
    const transport = new LoopbackTransport(dev);
    const resets: string[] = [];
    dev.onNeedsReset = (q, e) => resets.push(`${q}:${(e as VirtqueueError).kind}`);
    const driver = await GpioDriver.open(transport);
    const layout = driver['requestq'].layout;
    publishHead(transport.memory, layout, 0x7fff);
    transport.kick(REQUEST_QUEUE);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(resets, [`${REQUEST_QUEUE}:head-range`]);
    await driver.close();
  });
});

describe('through LoopbackTransport and GpioDriver', () => {
  async function open(names: readonly string[] = []) {
    const lines = new SimulatedLines(4, names);
    const model = new GpioDevice<DescriptorChain>(lines);
    const transport = new LoopbackTransport(new VirtioGpioDevice(model));
    const driver = await GpioDriver.open(transport);
    return { lines, model, transport, driver };
  }

  test('used lengths seen by the driver: 2, and 1 + N for names', async () => {
    const { driver } = await open(['a', 'bb', '', 'c']);
    assert.deepEqual(driver.names, ['a', 'bb', '', 'c']);
    const names = await driver.raw(GET_LINE_NAMES, 0, 0, { writable: [1 + 8] });
    assert.equal(names.len, 9);
    assert.deepEqual([...names.data], [OK, 0x61, 0, 0x62, 0x62, 0, 0, 0x63, 0]);
    const small = await driver.raw(GET_LINE_NAMES, 0, 0, { writable: [4] });
    assert.deepEqual([small.status, small.len], [ERR, 4]);
    const dir = await driver.raw(GET_DIRECTION, 1, 0);
    assert.deepEqual([dir.status, dir.value, dir.len], [OK, Direction.NONE, 2]);
    const bad = await driver.raw(GET_DIRECTION, 4, 0);
    assert.deepEqual([bad.status, bad.len], [ERR, 2]);
    await driver.close();
  });

  test('odd layouts through the driver: split, indirect, short', async () => {
    const { driver, lines } = await open();
    await driver.setDirection(0, Direction.IN);
    lines.setInput(0, 1);
    const req = encodeRequest({ type: GET_VALUE, gpio: 0, value: 0 });
    const split = await driver.raw(GET_VALUE, 0, 0, {
      readable: [req.subarray(0, 2), req.subarray(2, 4), req.subarray(4)],
      writable: [1, 1],
    });
    assert.deepEqual([split.status, split.value, split.len], [OK, 1, 2]);
    const ind = await driver.raw(GET_VALUE, 0, 0, { indirect: true });
    assert.deepEqual([ind.status, ind.value, ind.len], [OK, 1, 2]);
    const short = await driver.raw(GET_VALUE, 0, 0, { request: req.subarray(0, 7) });
    assert.deepEqual([short.status, short.len], [ERR, 2]);
    const unknown = await driver.raw(0x42, 0, 0);
    assert.deepEqual([unknown.status, unknown.len], [ERR, 2]);
    await driver.close();
  });

  test('§5 disable: the driver sees the eventq interrupt before the requestq one', async () => {
    const lines = new SimulatedLines(4);
    const transport = new LoopbackTransport(new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines)));
    const seen: string[] = [];
    const onInterrupt = transport.onInterrupt.bind(transport);
    transport.onInterrupt = (q, handler) =>
      onInterrupt(q, () => {
        seen.push(q === EVENT_QUEUE ? 'eventq' : 'requestq');
        handler();
      });
    const driver = await GpioDriver.open(transport);
    await driver.setDirection(1, Direction.IN);
    await driver.enableIrq(1, IrqType.EDGE_BOTH, () => {});
    await new Promise((r) => setImmediate(r));
    assert.equal(driver.irqArmed(1), true);
    seen.length = 0;
    await driver.disableIrq(1);
    assert.deepEqual(seen, ['eventq', 'requestq']);
    assert.equal(driver.irqArmed(1), false);
    await driver.close();
  });
});
