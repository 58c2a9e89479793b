// Driver side (DriverQueue) and device side (DeviceQueue) of one split ring over one GuestMemory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DriverQueue } from '../../src/virtqueue/driver-queue.ts';
import { GuestAllocator } from '../../src/virtqueue/guest-allocator.ts';
import { DESC_SIZE, DescFlag, contiguousLayout } from '../../src/virtqueue/split-ring.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/protocol/messages.ts';
import { decodeNames, encodeNames } from '../../src/protocol/names.ts';
import { MessageType, Status } from '../../src/protocol/constants.ts';
import { GuardedMemory, RingPeer, expectVirtqueueError, pattern, readDescAt } from './harness.ts';

const RAM = 0x10000;
const BUFFERS = 0x11000;

function pair(o: { size?: number; eventIdx?: boolean; indirect?: boolean; deviceIndirect?: boolean } = {}) {
  const size = o.size ?? 8;
  const g = new GuardedMemory([{ gpa: RAM, len: 0x10000 }]);
  const layout = contiguousLayout(size, RAM);
  assert.ok(layout.bytes <= BUFFERS - RAM);
  const alloc = new GuestAllocator(BUFFERS, RAM + 0x10000 - BUFFERS);
  const eventIdx = o.eventIdx ?? false;
  const indirect = o.indirect ?? false;
  const drv = new DriverQueue<string>(g.mem, layout, alloc, { eventIdx, indirect });
  const dev = new DeviceQueue(g.mem, layout, { eventIdx, indirect: o.deviceIndirect ?? indirect });
  return { g, layout, alloc, drv, dev, peer: new RingPeer(g.mem, layout) };
}

/** Splits bytes into consecutive parts of the given lengths. */
function split(bytes: Uint8Array, lens: readonly number[]): Uint8Array[] {
  assert.equal(
    lens.reduce((a, b) => a + b, 0),
    bytes.length,
  );
  let at = 0;
  return lens.map((n) => bytes.slice(at, (at += n)));
}

const REQUEST = encodeRequest({ type: MessageType.SET_IRQ_TYPE, gpio: 0x102, value: 3 });

describe('DriverQueue.add places exactly the descriptors asked for', () => {
  test('direct chain: readable 3+5, writable 2 -> descriptors 0,1,2 linked with NEXT, last WRITE', () => {
    const { g, drv, peer, layout } = pair();
    assert.equal(drv.descriptorsFor({ readable: [new Uint8Array(3), new Uint8Array(5)], writable: [2] }), 3);
    drv.add({ readable: split(REQUEST, [3, 5]), writable: [2] }, 'req');
    assert.deepEqual(
      [0, 1, 2].map((i) => peer.readDesc(i)),
      [
        { addr: BUFFERS, len: 3, flags: DescFlag.NEXT, next: 1 },
        { addr: BUFFERS + 16, len: 5, flags: DescFlag.NEXT, next: 2 },
        { addr: BUFFERS + 32, len: 2, flags: DescFlag.WRITE, next: 0 },
      ],
    );
    assert.deepEqual([...g.mem.read(BUFFERS, 3)], [...REQUEST.subarray(0, 3)]);
    assert.deepEqual([...g.mem.read(BUFFERS + 16, 5)], [...REQUEST.subarray(3)]);
    assert.equal(peer.availIdx, 1);
    assert.equal(peer.availEntry(0), 0);
    assert.equal(peer.availFlags, 0);
    assert.equal(drv.freeDescriptors, layout.size - 3);
    assert.equal(drv.outstanding, 1);
    assert.deepEqual(drv.tokens(), ['req']);
  });

  test('indirect chain: one ring descriptor pointing at a table of n linked descriptors', () => {
    const { g, drv, peer, layout } = pair({ indirect: true });
    const b = { readable: split(REQUEST, [1, 2, 5]), writable: [1, 1], indirect: true };
    assert.equal(drv.descriptorsFor(b), 1);
    drv.add(b, 'ind');
    const table = BUFFERS + 5 * 16; // allocated after the five buffers
    assert.deepEqual(peer.readDesc(0), {
      addr: table,
      len: 5 * DESC_SIZE,
      flags: DescFlag.INDIRECT,
      next: 0,
    });
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => readDescAt(g.mem, table, i)),
      [
        { addr: BUFFERS, len: 1, flags: DescFlag.NEXT, next: 1 },
        { addr: BUFFERS + 16, len: 2, flags: DescFlag.NEXT, next: 2 },
        { addr: BUFFERS + 32, len: 5, flags: DescFlag.NEXT, next: 3 },
        { addr: BUFFERS + 48, len: 1, flags: DescFlag.WRITE | DescFlag.NEXT, next: 4 },
        { addr: BUFFERS + 64, len: 1, flags: DescFlag.WRITE, next: 0 },
      ],
    );
    assert.equal(drv.freeDescriptors, layout.size - 1);
  });

  test('writable buffers are zeroed when placed (no stale guest data reaches the device)', () => {
    const { g, drv } = pair();
    g.mem.write(BUFFERS, new Uint8Array(64).fill(0xff));
    drv.add({ readable: [], writable: [5, 20] }, 'w');
    assert.deepEqual([...g.mem.read(BUFFERS, 5)], [0, 0, 0, 0, 0]);
    assert.deepEqual([...g.mem.read(BUFFERS + 16, 20)], new Array(20).fill(0));
    assert.equal(g.mem.read(BUFFERS + 5, 1)[0], 0xff, 'padding after a buffer is not the buffer');
  });

  test('the fill option pre-fills writable buffers with that byte', () => {
    const { g, drv, dev } = pair();
    drv.add({ readable: [REQUEST], writable: [3, 2], fill: 0xff }, 'f');
    assert.deepEqual([...g.mem.read(BUFFERS + 16, 3)], [0xff, 0xff, 0xff]);
    assert.deepEqual([...g.mem.read(BUFFERS + 32, 2)], [0xff, 0xff]);
    const c = dev.pop()!;
    c.write(Uint8Array.of(0, 1));
    dev.push(c.head, 2);
    assert.deepEqual([...drv.collect()[0].data], [0, 1, 0xff, 0xff, 0xff]);
  });

  test('deviceUsedIndex, collectedIndex and setUsedEvent', () => {
    const { drv, dev, peer } = pair({ eventIdx: true });
    drv.add({ readable: [REQUEST], writable: [2] }, 'a');
    drv.add({ readable: [REQUEST], writable: [2] }, 'b');
    const [a, b] = [dev.pop()!, dev.pop()!];
    dev.push(a.head, 2);
    dev.push(b.head, 2);
    assert.deepEqual([drv.deviceUsedIndex, drv.collectedIndex], [2, 0]);
    assert.equal(drv.collect().length, 2);
    assert.deepEqual([drv.deviceUsedIndex, drv.collectedIndex], [2, 2]);
    assert.equal(peer.usedEvent, 2);
    drv.setUsedEvent(0x1_0005);
    assert.equal(peer.usedEvent, 5);
  });

  test('not enough descriptors: VirtqueueError full, nothing leaked or published', () => {
    const { drv, alloc, peer } = pair({ size: 4 });
    drv.add({ readable: [REQUEST, REQUEST], writable: [2] }, 'a');
    const before = { free: drv.freeDescriptors, allocated: alloc.allocated, idx: peer.availIdx };
    expectVirtqueueError(() => drv.add({ readable: [REQUEST], writable: [2] }, 'b'), 'full');
    assert.deepEqual({ free: drv.freeDescriptors, allocated: alloc.allocated, idx: peer.availIdx }, before);
    assert.deepEqual(before, { free: 1, allocated: 3, idx: 1 });
    drv.add({ readable: [REQUEST], writable: [] }, 'c'); // one descriptor still fits
    assert.equal(drv.freeDescriptors, 0);
  });

  test('indirect fits where a direct chain would not', () => {
    const { drv } = pair({ size: 2, indirect: true });
    drv.add({ readable: [REQUEST, REQUEST, REQUEST], writable: [2, 2], indirect: true }, 'x');
    drv.add({ readable: [REQUEST, REQUEST, REQUEST], writable: [2, 2], indirect: true }, 'y');
    assert.equal(drv.freeDescriptors, 0);
    expectVirtqueueError(() => drv.add({ readable: [REQUEST], writable: [], indirect: true }, 'z'), 'full');
  });

  test('guest buffer space exhausted mid-add: VirtqueueError full, every partial allocation released', () => {
    const g = new GuardedMemory([{ gpa: RAM, len: 0x2000 }]);
    const layout = contiguousLayout(8, RAM);
    const alloc = new GuestAllocator(BUFFERS, 64); // four 16-byte blocks
    const drv = new DriverQueue<string>(g.mem, layout, alloc, { eventIdx: false, indirect: true });
    const peer = new RingPeer(g.mem, layout);
    expectVirtqueueError(() => drv.add({ readable: [REQUEST, REQUEST], writable: [2, 2, 2] }, 'a'), 'full');
    expectVirtqueueError(
      () => drv.add({ readable: [REQUEST], writable: [2, 2], indirect: true }, 'b'),
      'full',
    );
    assert.deepEqual([alloc.allocated, drv.freeDescriptors, drv.outstanding, peer.availIdx], [0, 8, 0, 0]);
    assert.equal(alloc.alloc(64), BUFFERS, 'the whole buffer area is free again');
  });

  test('indirect without INDIRECT_DESC is refused; an empty chain is a RangeError', () => {
    const { drv } = pair();
    expectVirtqueueError(
      () => drv.add({ readable: [REQUEST], writable: [2], indirect: true }, 'a'),
      'indirect',
    );
    assert.throws(() => drv.add({ readable: [], writable: [] }, 'b'), RangeError);
    assert.equal(drv.freeDescriptors, 8);
  });
});

describe('gather/scatter across descriptor layouts', () => {
  const readableSplits = [[8], [3, 5], [1, 2, 5], [1, 1, 1, 1, 1, 1, 1, 1], [0, 8], [2, 0, 6, 0]];
  const writableSplits = [[2], [1, 1], [1, 0, 1], [1, 1, 1, 1], [0, 2]];

  for (const indirect of [false, true]) {
    test(`request over 1..8 readable and response over 1..4 writable descriptors (indirect ${indirect})`, () => {
      const { g, drv, dev, alloc } = pair({ size: 16, indirect });
      let n = 0;
      for (const rs of readableSplits) {
        for (const ws of writableSplits) {
          const token = `${rs}/${ws}`;
          drv.add({ readable: split(REQUEST, rs), writable: ws, indirect }, token);
          const chain = dev.pop();
          assert.ok(chain, token);
          assert.equal(dev.pop(), null);
          assert.deepEqual(
            chain.readable.map((s) => s.len),
            rs,
          );
          assert.deepEqual(
            chain.writable.map((s) => s.len),
            ws,
          );
          assert.equal(chain.readableLength, 8);
          assert.equal(
            chain.writableLength,
            ws.reduce((a, b) => a + b, 0),
          );
          assert.deepEqual(chain.read(), REQUEST);
          assert.deepEqual(chain.read(100), REQUEST);
          assert.deepEqual([...chain.read(5)], [...REQUEST.subarray(0, 5)]);
          assert.equal(chain.read(0).length, 0);
          assert.deepEqual(decodeRequest(chain.read(8)), { type: 6, gpio: 0x102, value: 3 });

          const snap = g.snapshot();
          assert.equal(chain.write(encodeResponse({ status: Status.OK, value: 1 })), 2);
          // exactly the two writable bytes changed (one of them stays 0 only if it was 0 already)
          const changed = g.changedSince(snap);
          assert.deepEqual(changed.guards, []);
          const wAddrs = chain.writable.flatMap((s) => Array.from({ length: s.len }, (_, i) => s.addr + i));
          assert.deepEqual(
            changed.gpas,
            [wAddrs[1]],
            'status 0 leaves the zeroed byte; value 1 lands in byte 1',
          );
          dev.push(chain.head, 2);

          const used = drv.collect();
          assert.equal(used.length, 1);
          assert.equal(used[0].token, token);
          assert.equal(used[0].len, 2);
          assert.deepEqual([...used[0].data], [0, 1, ...new Array(chain.writableLength - 2).fill(0)]);
          assert.deepEqual(decodeResponse(used[0].data, used[0].len), { status: Status.OK, value: 1 });
          n++;
        }
      }
      assert.equal(n, readableSplits.length * writableSplits.length);
      assert.equal(drv.freeDescriptors, 16);
      assert.equal(alloc.allocated, 0);
      assert.deepEqual(g.damagedGuards(), []);
    });
  }

  test('DescriptorChain.write at byte offsets scatters over uneven writable descriptors', () => {
    const { drv, dev } = pair();
    const lens = [3, 1, 4, 0, 8]; // 16 bytes in all
    const cases: Array<{ data: Uint8Array; at: number; wrote: number; expect: number[] }> = [
      { data: pattern(16, 1), at: 0, wrote: 16, expect: [...pattern(16, 1)] },
      { data: pattern(20, 1), at: 0, wrote: 16, expect: [...pattern(16, 1)] }, // truncated
      {
        data: Uint8Array.of(0xaa, 0xbb),
        at: 2,
        wrote: 2,
        expect: [0, 0, 0xaa, 0xbb, ...new Array(12).fill(0)],
      },
      {
        data: Uint8Array.of(0xaa, 0xbb, 0xcc),
        at: 3,
        wrote: 3,
        expect: [0, 0, 0, 0xaa, 0xbb, 0xcc, ...new Array(10).fill(0)],
      },
      {
        data: Uint8Array.of(1, 2, 3, 4),
        at: 7,
        wrote: 4,
        expect: [...new Array(7).fill(0), 1, 2, 3, 4, 0, 0, 0, 0, 0],
      },
      { data: Uint8Array.of(9, 9, 9), at: 14, wrote: 2, expect: [...new Array(14).fill(0), 9, 9] },
      { data: Uint8Array.of(9), at: 16, wrote: 0, expect: new Array(16).fill(0) },
      { data: Uint8Array.of(9), at: 1000, wrote: 0, expect: new Array(16).fill(0) },
      { data: new Uint8Array(0), at: 4, wrote: 0, expect: new Array(16).fill(0) },
    ];
    for (const c of cases) {
      drv.add({ readable: [], writable: lens }, `at ${c.at}`);
      const chain = dev.pop();
      assert.ok(chain);
      assert.equal(chain.readableLength, 0);
      assert.equal(chain.read().length, 0);
      assert.equal(chain.write(c.data, c.at), c.wrote, `at ${c.at}`);
      dev.push(chain.head, c.wrote);
      const [u] = drv.collect();
      assert.equal(u.len, c.wrote);
      assert.deepEqual([...u.data], c.expect, `at ${c.at}`);
    }
  });

  test('a negative write offset is refused instead of writing before the buffer', () => {
    const { g, drv, dev } = pair();
    drv.add({ readable: [REQUEST], writable: [4] }, 'neg');
    const chain = dev.pop();
    assert.ok(chain);
    const snap = g.snapshot();
    assert.throws(() => chain.write(Uint8Array.of(1, 2, 3, 4), -2), RangeError);
    assert.throws(() => chain.write(Uint8Array.of(1), 0.5), RangeError);
    assert.deepEqual(g.changedSince(snap), { gpas: [], guards: [] });
  });

  test('GET_LINE_NAMES: status byte then the names block over several writable descriptors', () => {
    const { drv, dev } = pair();
    const names = ['LED', '', '', '', '', 'BTN', '', 'Vdd', '', ''];
    const block = encodeNames(names);
    drv.add(
      {
        readable: [encodeRequest({ type: MessageType.GET_LINE_NAMES, gpio: 0, value: 0 })],
        writable: [1, 7, 30],
      },
      'names',
    );
    const chain = dev.pop();
    assert.ok(chain);
    assert.equal(decodeRequest(chain.read()).type, MessageType.GET_LINE_NAMES);
    assert.equal(chain.write(Uint8Array.of(Status.OK)), 1);
    assert.equal(chain.write(block, 1), block.length);
    dev.push(chain.head, 1 + block.length);
    const [u] = drv.collect();
    assert.equal(u.len, 1 + block.length);
    assert.equal(u.data.length, 38);
    assert.equal(u.data[0], Status.OK);
    assert.deepEqual(decodeNames(u.data.subarray(1, u.len), 10), names);
  });

  test('chains completed out of order come back with their own tokens and data', () => {
    const { drv, dev, alloc } = pair();
    for (const t of ['a', 'b', 'c']) drv.add({ readable: [new TextEncoder().encode(t)], writable: [1] }, t);
    const chains = [dev.pop(), dev.pop(), dev.pop()];
    assert.equal(dev.pop(), null);
    const byToken = new Map(chains.map((c) => [String.fromCharCode(c!.read()[0]), c!]));
    for (const t of ['c', 'a', 'b']) {
      const c = byToken.get(t)!;
      c.write(Uint8Array.of(t.charCodeAt(0) + 1));
      dev.push(c.head, 1);
    }
    const used = drv.collect();
    assert.deepEqual(
      used.map((u) => [u.token, u.len, String.fromCharCode(u.data[0])]),
      [
        ['c', 1, 'd'],
        ['a', 1, 'b'],
        ['b', 1, 'c'],
      ],
    );
    assert.deepEqual(drv.collect(), []);
    assert.equal(drv.outstanding, 0);
    assert.equal(alloc.allocated, 0);
    assert.equal(drv.freeDescriptors, 8);
  });

  test('used length is reported as the device wrote it, data is the whole writable area', () => {
    const { drv, dev } = pair();
    drv.add({ readable: [REQUEST], writable: [2, 3] }, 'x');
    const c = dev.pop()!;
    c.write(Uint8Array.of(7, 7, 7, 7, 7));
    dev.push(c.head, 3);
    const [u] = drv.collect();
    assert.equal(u.len, 3);
    assert.deepEqual([...u.data], [7, 7, 7, 7, 7]);
    assert.throws(() => decodeResponse(u.data, u.len), { name: 'ProtocolError' });
  });

  test('the device returning an id that is not in flight is VirtqueueError used', () => {
    const { drv, dev, peer } = pair();
    drv.add({ readable: [REQUEST], writable: [2] }, 'x');
    const c = dev.pop()!;
    peer.setUsedElem(0, 5, 2); // descriptor 5 was never handed out
    peer.usedIdx = 1;
    expectVirtqueueError(() => drv.collect(), 'used');
    peer.setUsedElem(0, c.head, 2);
    assert.deepEqual(
      drv.collect().map((u) => u.token),
      ['x'],
    );
    peer.usedIdx = 2; // the same id again
    peer.setUsedElem(1, c.head, 2);
    expectVirtqueueError(() => drv.collect(), 'used');
  });
});

describe('buffers spanning two adjacent memory regions', () => {
  // Region A holds the ring and the first half of the buffer area, region B the second half.
  function spanning(indirect: boolean) {
    const g = new GuardedMemory([
      { gpa: 0x10000, len: 0x1000 },
      { gpa: 0x11000, len: 0x1000 },
    ]);
    const layout = contiguousLayout(8, 0x10000);
    const alloc = new GuestAllocator(0x10ff0, 0x100); // first buffer straddles 0x11000
    const drv = new DriverQueue<string>(g.mem, layout, alloc, { eventIdx: false, indirect });
    const dev = new DeviceQueue(g.mem, layout, { eventIdx: false, indirect });
    return { g, drv, dev };
  }

  test('a readable buffer across the boundary is gathered intact', () => {
    const { g, drv, dev } = spanning(false);
    const data = pattern(40, 7);
    drv.add({ readable: [data], writable: [2] }, 'r');
    const c = dev.pop()!;
    assert.deepEqual(c.readable, [{ addr: 0x10ff0, len: 40 }]);
    assert.deepEqual(c.read(), data);
    assert.deepEqual([...c.read(20)], [...data.subarray(0, 20)]);
    assert.deepEqual(g.damagedGuards(), []);
  });

  test('a writable buffer across the boundary is zeroed by the driver and scattered by the device', () => {
    const { g, drv, dev } = spanning(false);
    g.mem.write(0x10ff0, new Uint8Array(64).fill(0xee));
    drv.add({ readable: [], writable: [40] }, 'w');
    assert.deepEqual([...g.mem.read(0x10ff0, 40)], new Array(40).fill(0));
    const c = dev.pop()!;
    assert.deepEqual(c.writable, [{ addr: 0x10ff0, len: 40 }]);
    assert.equal(c.write(pattern(40, 3)), 40);
    dev.push(c.head, 40);
    const [u] = drv.collect();
    assert.deepEqual(u.data, pattern(40, 3));
    assert.deepEqual(g.damagedGuards(), []);
  });
});
