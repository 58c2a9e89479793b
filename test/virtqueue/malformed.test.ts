// Every way a driver can hand the device a malformed split ring. Each pop() must throw a
// VirtqueueError of the right kind, break the queue for good, and write nothing anywhere.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DescFlag, contiguousLayout, type RingLayout } from '../../src/virtqueue/split-ring.ts';
import {
  GuardedMemory,
  RingPeer,
  expectPopBreaks,
  expectVirtqueueError,
  pattern,
  writeDescAt,
  type Desc,
} from './harness.ts';

// Region A [0x10000, 0x14000) holds the ring (size 8), buffers from 0x11000 and indirect tables
// from 0x12000; region B [0x20000, 0x21000) lies after a gap.
const A = 0x10000;
const A_END = 0x14000;
const B = 0x20000;
const B_END = 0x21000;
const BUF = 0x11000;
const TABLE = 0x12000;
const SIZE = 8;

function rig(o: { indirect?: boolean; eventIdx?: boolean; nextAvail?: number } = {}) {
  const g = new GuardedMemory([
    { gpa: A, len: A_END - A },
    { gpa: B, len: B_END - B },
  ]);
  const layout = contiguousLayout(SIZE, A);
  const peer = new RingPeer(g.mem, layout);
  peer.availIdx = o.nextAvail ?? 0;
  const dev = new DeviceQueue(g.mem, layout, {
    eventIdx: o.eventIdx ?? true,
    indirect: o.indirect ?? true,
    nextAvail: o.nextAvail,
  });
  g.mem.write(BUF, pattern(0x800)); // recognisable buffer contents
  const table = (at: number, descs: Desc[]) => descs.forEach((d, i) => writeDescAt(g.mem, at, i, d));
  return { g, layout, peer, dev, table };
}

const rd = (addr: number | bigint, len: number, next?: number): Desc => ({
  addr,
  len,
  flags: next === undefined ? 0 : DescFlag.NEXT,
  next: next ?? 0,
});
const wr = (addr: number | bigint, len: number, next?: number): Desc => ({
  addr,
  len,
  flags: DescFlag.WRITE | (next === undefined ? 0 : DescFlag.NEXT),
  next: next ?? 0,
});
const ind = (addr: number | bigint, len: number, extraFlags = 0): Desc => ({
  addr,
  len,
  flags: DescFlag.INDIRECT | extraFlags,
  next: 0,
});

/** One chain (descriptors written at the given indices) offered as head `head`; pop must fail with kind. */
function breaksWith(
  kind: Parameters<typeof expectPopBreaks>[2],
  descs: Array<[number, Desc]>,
  head = descs[0][0],
) {
  const r = rig();
  for (const [i, d] of descs) r.peer.desc(i, d);
  r.peer.offer(head);
  return expectPopBreaks(r.dev, r.g, kind);
}

describe('buffer addresses', () => {
  test('address in the gap between regions', () => {
    breaksWith('out-of-bounds', [[0, rd(0x15000, 8)]]);
  });

  test('address below every region', () => {
    breaksWith('out-of-bounds', [[0, rd(0x100, 8)]]);
  });

  test('address far above every region', () => {
    breaksWith('out-of-bounds', [[0, rd(0x1_0000_0000, 8)]]);
  });

  test('address + len straddles the end of region A (a gap follows)', () => {
    breaksWith('out-of-bounds', [[0, rd(A_END - 8, 16)]]);
  });

  test('address + len straddles the end of region B (the last region)', () => {
    breaksWith('out-of-bounds', [[0, wr(B_END - 0x10, 0x11)]]);
  });

  test('len 0xffffffff from a valid address', () => {
    breaksWith('out-of-bounds', [[0, rd(BUF, 0xffffffff)]]);
  });

  test('address at 2^53 + region A (would alias A if truncated to 53 bits)', () => {
    breaksWith('out-of-bounds', [[0, rd(2n ** 53n + BigInt(BUF), 8)]]);
  });

  test('address near 2^64 whose end wraps around to region A in 64-bit arithmetic', () => {
    breaksWith('out-of-bounds', [[0, rd(2n ** 64n - 8n, 0x11008)]]);
  });

  test('address 0xffff_ffff_ffff_ffff', () => {
    breaksWith('out-of-bounds', [[0, wr(2n ** 64n - 1n, 1)]]);
  });

  test('a later descriptor of the chain is out of bounds', () => {
    breaksWith('out-of-bounds', [
      [2, rd(BUF, 8, 5)],
      [5, wr(BUF + 0x100, 2, 6)],
      [6, wr(A_END, 1)],
    ]);
  });
});

describe('descriptor indices', () => {
  test('head index equal to the queue size', () => {
    breaksWith('head-range', [[0, rd(BUF, 8)]], SIZE);
  });

  test('head index 0xffff', () => {
    breaksWith('head-range', [[0, rd(BUF, 8)]], 0xffff);
  });

  test('next equal to the queue size', () => {
    breaksWith('head-range', [[0, rd(BUF, 8, SIZE)]]);
  });

  test('next 0xffff', () => {
    breaksWith('head-range', [
      [1, rd(BUF, 8, 3)],
      [3, wr(BUF + 16, 2, 0xffff)],
    ]);
  });

  test('next is ignored without the NEXT flag', () => {
    const r = rig();
    r.peer.desc(0, { addr: BUF, len: 8, flags: 0, next: 0xffff });
    r.peer.offer(0);
    const c = r.dev.pop();
    assert.ok(c);
    assert.deepEqual(c.readable, [{ addr: BUF, len: 8 }]);
  });
});

describe('loops', () => {
  test('a -> b -> a', () => {
    breaksWith('loop', [
      [2, rd(BUF, 8, 4)],
      [4, rd(BUF, 8, 2)],
    ]);
  });

  test('self-loop', () => {
    breaksWith('loop', [[3, wr(BUF, 8, 3)]]);
  });

  test('a chain through every descriptor and back to the start (longer than the queue)', () => {
    const descs: Array<[number, Desc]> = [];
    for (let i = 0; i < SIZE; i++) descs.push([i, rd(BUF + i, 1, (i + 1) % SIZE)]);
    breaksWith('loop', descs);
  });

  test('a chain through every descriptor exactly once is fine (boundary)', () => {
    const r = rig();
    for (let i = 0; i < SIZE; i++) r.peer.desc(i, i < SIZE - 1 ? rd(BUF + i, 1, i + 1) : wr(BUF + 0x100, 4));
    r.peer.offer(0);
    const c = r.dev.pop();
    assert.ok(c);
    assert.equal(c.readable.length, SIZE - 1);
    assert.deepEqual([...c.read()], [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(c.writableLength, 4);
  });
});

describe('indirect descriptors', () => {
  test('INDIRECT when INDIRECT_DESC was not negotiated', () => {
    const r = rig({ indirect: false });
    r.table(TABLE, [rd(BUF, 8)]);
    r.peer.desc(0, ind(TABLE, 16));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'indirect');
  });

  test('INDIRECT together with NEXT', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF, 8)]);
    r.peer.desc(0, { ...ind(TABLE, 16, DescFlag.NEXT), next: 1 });
    r.peer.desc(1, wr(BUF + 0x100, 2));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'indirect');
  });

  for (const len of [0, 8, 24, 0xfffffff8]) {
    test(`indirect table length ${len} (zero or not a multiple of 16)`, () => {
      const r = rig();
      r.table(TABLE, [rd(BUF, 8), wr(BUF + 16, 2)]);
      r.peer.desc(0, ind(TABLE, len));
      r.peer.offer(0);
      expectPopBreaks(r.dev, r.g, 'indirect');
    });
  }

  const badTables: Array<[string, number | bigint, number]> = [
    ['in the gap', 0x15000, 32],
    ['straddling the end of region A', A_END - 16, 32],
    ['straddling the end of region B', B_END - 16, 32],
    ['beyond 2^53', 2n ** 53n + BigInt(TABLE), 32],
    ['at 2^64 - 16', 2n ** 64n - 16n, 32],
    ['larger than all memory', TABLE, 0xfffffff0],
  ];
  for (const [what, addr, len] of badTables) {
    test(`indirect table ${what}`, () => {
      const r = rig();
      r.peer.desc(0, ind(addr, len));
      r.peer.offer(0);
      expectPopBreaks(r.dev, r.g, 'out-of-bounds');
    });
  }

  test('indirect inside indirect', () => {
    const r = rig();
    r.table(TABLE + 0x100, [rd(BUF, 8)]); // a valid inner table
    r.table(TABLE, [rd(BUF, 8, 1), ind(TABLE + 0x100, 16)]);
    r.peer.desc(0, ind(TABLE, 32));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'nested-indirect');
  });

  test('an indirect chain longer than the queue (a huge table cannot make pop walk it all)', () => {
    const r = rig();
    const n = SIZE + 1; // one more than the queue allows, each entry valid
    r.table(
      TABLE,
      Array.from({ length: n }, (_, i) => rd(BUF + i, 1, i + 1 < n ? i + 1 : undefined)),
    );
    r.peer.desc(0, ind(TABLE, 16 * n));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'loop');
  });

  test('an indirect chain exactly as long as the queue is fine', () => {
    const r = rig();
    r.table(
      TABLE,
      Array.from({ length: SIZE }, (_, i) => rd(BUF + i, 1, i + 1 < SIZE ? i + 1 : undefined)),
    );
    r.peer.desc(0, ind(TABLE, 16 * SIZE));
    r.peer.offer(0);
    const c = r.dev.pop();
    assert.equal(c?.readable.length, SIZE);
  });

  test('loop inside an indirect table', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF, 1, 1), rd(BUF + 1, 1, 2), rd(BUF + 2, 1, 1)]);
    r.peer.desc(0, ind(TABLE, 48));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'loop');
  });

  test('self-loop inside an indirect table', () => {
    const r = rig();
    r.table(TABLE, [wr(BUF, 2, 0)]);
    r.peer.desc(0, ind(TABLE, 16));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'loop');
  });

  test('next beyond the indirect table (but inside the ring size)', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF, 8, 1), wr(BUF + 16, 2, 2)]); // table has 2 entries
    r.peer.desc(0, ind(TABLE, 32));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'head-range');
  });

  test('out-of-bounds buffer inside an indirect table', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF, 8, 1), wr(0x15000, 2)]);
    r.peer.desc(0, ind(TABLE, 32));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'out-of-bounds');
  });

  test('a table walked to its last entry is fine, and WRITE on the indirect descriptor is ignored', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF, 3, 1), rd(BUF + 3, 5, 2), wr(BUF + 0x100, 1, 3), wr(BUF + 0x200, 1)]);
    r.peer.desc(5, ind(TABLE, 64, DescFlag.WRITE));
    r.peer.offer(5);
    const c = r.dev.pop();
    assert.ok(c);
    assert.equal(c.head, 5);
    assert.deepEqual(c.readable, [
      { addr: BUF, len: 3 },
      { addr: BUF + 3, len: 5 },
    ]);
    assert.deepEqual(c.writable, [
      { addr: BUF + 0x100, len: 1 },
      { addr: BUF + 0x200, len: 1 },
    ]);
    assert.deepEqual([...c.read()], [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('direct descriptors followed by one indirect descriptor are allowed (virtio 1.2 §2.7.5.3.2)', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF + 4, 4, 1), wr(BUF + 0x100, 2)]);
    r.peer.desc(1, rd(BUF, 4, 6));
    r.peer.desc(6, ind(TABLE, 32));
    r.peer.offer(1);
    const c = r.dev.pop();
    assert.ok(c);
    assert.deepEqual(c.readable, [
      { addr: BUF, len: 4 },
      { addr: BUF + 4, len: 4 },
    ]);
    assert.deepEqual(c.writable, [{ addr: BUF + 0x100, len: 2 }]);
  });
});

describe('descriptor order', () => {
  test('readable after writable (direct)', () => {
    breaksWith('order', [
      [0, rd(BUF, 8, 1)],
      [1, wr(BUF + 0x100, 2, 2)],
      [2, rd(BUF + 8, 8)],
    ]);
  });

  test('readable after writable inside an indirect table', () => {
    const r = rig();
    r.table(TABLE, [wr(BUF + 0x100, 2, 1), rd(BUF, 8)]);
    r.peer.desc(0, ind(TABLE, 32));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'order');
  });

  test('direct writable followed by an indirect table that starts readable', () => {
    const r = rig();
    r.table(TABLE, [rd(BUF, 8)]);
    r.peer.desc(0, wr(BUF + 0x100, 2, 1));
    r.peer.desc(1, ind(TABLE, 16));
    r.peer.offer(0);
    expectPopBreaks(r.dev, r.g, 'order');
  });
});

describe('avail index', () => {
  test('avail idx more than a queue ahead: pop breaks', () => {
    const r = rig();
    r.peer.desc(0, rd(BUF, 8));
    r.peer.availIdx = SIZE + 1;
    expectPopBreaks(r.dev, r.g, 'avail-index');
  });

  test('avail idx more than a queue ahead: pending() breaks the queue too', () => {
    const r = rig();
    r.peer.availIdx = 0x8000;
    const e = expectVirtqueueError(() => r.dev.pending(), 'avail-index');
    assert.equal(r.dev.broken, e);
    assert.throws(
      () => r.dev.pop(),
      (x) => x === e,
    );
  });

  test('avail idx behind the device (moved backwards) reads as 65535 ahead', () => {
    const r = rig({ nextAvail: 5 });
    r.peer.availIdx = 4;
    expectPopBreaks(r.dev, r.g, 'avail-index');
  });

  test('avail idx exactly a queue ahead is fine', () => {
    const r = rig();
    for (let i = 0; i < SIZE; i++) r.peer.desc(i, rd(BUF + i, 1));
    r.peer.offer(7, 6, 5, 4, 3, 2, 1, 0);
    assert.equal(r.dev.pending(), SIZE);
    const heads = Array.from({ length: SIZE }, () => r.dev.pop()!.head);
    assert.deepEqual(heads, [7, 6, 5, 4, 3, 2, 1, 0]);
    assert.equal(r.dev.pop(), null);
  });
});

describe('broken queue', () => {
  test('good chains before the bad one are served; the bad one breaks the queue for good', () => {
    const r = rig();
    r.peer.desc(0, rd(BUF, 8));
    r.peer.desc(1, rd(0x15000, 8));
    r.peer.desc(2, rd(BUF, 8));
    r.peer.offer(0, 1, 2);
    const c = r.dev.pop();
    assert.equal(c?.head, 0);
    r.dev.push(0, 0);
    assert.equal(r.dev.lastAvailIndex, 1);
    const e = expectPopBreaks(r.dev, r.g, 'out-of-bounds');
    assert.match(e.message, /0x15000/);
    assert.equal(r.dev.lastAvailIndex, 1, 'the bad entry is not consumed');
    r.peer.desc(1, rd(BUF, 8)); // the driver "fixing" the descriptor does not revive the queue
    assert.throws(
      () => r.dev.pop(),
      (x) => x === e,
    );
  });

  test('a zero-length descriptor at an unbacked address is harmless: nothing to read or write', () => {
    const r = rig();
    r.peer.desc(0, rd(0x15000, 0, 1));
    r.peer.desc(1, rd(BUF, 4, 2));
    r.peer.desc(2, wr(A_END, 0, 3));
    r.peer.desc(3, wr(BUF + 0x100, 2));
    r.peer.offer(0);
    const c = r.dev.pop();
    assert.ok(c);
    assert.equal(c.readableLength, 4);
    assert.deepEqual([...c.read()], [0, 1, 2, 3]);
    const snap = r.g.snapshot();
    assert.equal(c.write(Uint8Array.of(0xaa, 0xbb, 0xcc)), 2);
    assert.deepEqual(r.g.changedSince(snap), { gpas: [BUF + 0x100, BUF + 0x101], guards: [] });
  });
});

describe('constructor: ring layout', () => {
  const make = (g: GuardedMemory, layout: RingLayout) => () =>
    new DeviceQueue(g.mem, layout, { eventIdx: true, indirect: true });

  for (const size of [0, 3, 6, 100, 65536, 1.5, -8, Number.NaN]) {
    test(`queue size ${size} is invalid`, () => {
      const g = new GuardedMemory([{ gpa: A, len: 0x4000 }]);
      expectVirtqueueError(make(g, { ...contiguousLayout(8, A), size }), 'layout');
    });
  }

  const cases: Array<[string, (l: RingLayout) => RingLayout]> = [
    ['descriptor table in the gap', (l) => ({ ...l, descAddr: 0x15000 })],
    ['descriptor table straddling the end of region A', (l) => ({ ...l, descAddr: A_END - 64 })],
    ['avail ring outside memory', (l) => ({ ...l, availAddr: 0x1_0000_0000 })],
    ['avail ring straddling the end of region B', (l) => ({ ...l, availAddr: B_END - 10 })],
    ['used ring outside memory', (l) => ({ ...l, usedAddr: 0x100 })],
    ['used ring straddling the end of region A', (l) => ({ ...l, usedAddr: A_END - 8 })],
    ['used ring at a negative address', (l) => ({ ...l, usedAddr: -0x100 })],
    ['descriptor table beyond 2^53', (l) => ({ ...l, descAddr: 2 ** 53 + A })],
    ['avail ring at NaN', (l) => ({ ...l, availAddr: Number.NaN })],
  ];
  for (const [what, change] of cases) {
    test(what, () => {
      const g = new GuardedMemory([
        { gpa: A, len: A_END - A },
        { gpa: B, len: B_END - B },
      ]);
      const snap = g.snapshot();
      expectVirtqueueError(make(g, change(contiguousLayout(8, A))), 'layout');
      assert.deepEqual(g.changedSince(snap), { gpas: [], guards: [] });
    });
  }

  test('a ring split across two adjacent regions is refused (each ring must be in one region)', () => {
    const g = new GuardedMemory([
      { gpa: A, len: 0x40 },
      { gpa: A + 0x40, len: 0x1000 },
    ]);
    expectVirtqueueError(make(g, contiguousLayout(8, A)), 'layout');
  });
});
