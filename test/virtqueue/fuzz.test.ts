// Property tests: whatever a driver puts in the descriptor table, the avail ring and indirect tables,
// the device side either yields chains that lie inside guest memory or fails with a VirtqueueError
// (and stays broken); it never throws anything else and never writes outside the writable buffers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DescFlag, contiguousLayout } from '../../src/virtqueue/split-ring.ts';
import { VirtqueueError } from '../../src/virtqueue/virtqueue-error.ts';
import { GuardedMemory, RingPeer, writeDescAt, type Desc } from './harness.ts';

const A = 0x10000;
const A_END = 0x13000;
const B = 0x13000; // adjacent to A
const B_END = 0x13800;
const C = 0x20000; // after a gap
const C_END = 0x20400;
const SIZE = 8;
const TABLES = [0x11000, 0x12ff0, 0x20200]; // the second straddles A|B
const TABLE_ENTRIES = 4;

const interesting = [
  A,
  A + 0x800,
  A_END - 8,
  B,
  B_END - 4,
  B_END,
  C,
  C_END - 1,
  C_END,
  0x15000,
  0,
  ...TABLES,
];

const arbAddr = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: A + 0x400, max: A + 0xc00 }).map(BigInt) }, // plainly valid
  { weight: 3, arbitrary: fc.constantFrom(...interesting).map(BigInt) },
  { weight: 3, arbitrary: fc.integer({ min: A - 0x10, max: C_END + 0x10 }).map(BigInt) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 53n - 0x100n, max: 2n ** 53n + 0x100n }) },
);
const arbLen = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 48 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 16, 32, 48, 64, 24, 0x800, 0xffffffff) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);
const arbNext = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: SIZE - 1 }) },
  { weight: 1, arbitrary: fc.constant(SIZE) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);
const plainDesc: fc.Arbitrary<Desc> = fc.record({
  addr: arbAddr,
  len: arbLen,
  flags: fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom(0, DescFlag.NEXT, DescFlag.WRITE, DescFlag.WRITE | DescFlag.NEXT),
    },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  ),
  next: arbNext,
});
const indirectDesc: fc.Arbitrary<Desc> = fc.record({
  addr: fc.constantFrom(...TABLES).map(BigInt),
  len: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(16, 32, 48, 64) }, fc.constantFrom(0, 8, 80)),
  flags: fc.constantFrom(
    DescFlag.INDIRECT,
    DescFlag.INDIRECT,
    DescFlag.INDIRECT | DescFlag.WRITE,
    DescFlag.INDIRECT | DescFlag.NEXT,
  ),
  next: arbNext,
});
const anyDesc = fc.oneof({ weight: 4, arbitrary: plainDesc }, { weight: 1, arbitrary: indirectDesc });
const tableDesc = fc.oneof({ weight: 3, arbitrary: plainDesc }, { weight: 1, arbitrary: indirectDesc });

const arbCase = fc.record({
  descs: fc.array(anyDesc, { minLength: SIZE, maxLength: SIZE }),
  tables: fc.array(fc.array(tableDesc, { minLength: TABLE_ENTRIES, maxLength: TABLE_ENTRIES }), {
    minLength: TABLES.length,
    maxLength: TABLES.length,
  }),
  heads: fc.array(
    fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 0, max: SIZE - 1 }) },
      fc.integer({ min: 0, max: 0xffff }),
    ),
    {
      minLength: SIZE,
      maxLength: SIZE,
    },
  ),
  nextAvail: fc.oneof(fc.constantFrom(0, 0xfffe, 0xfff9), fc.integer({ min: 0, max: 0xffff })),
  ahead: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: SIZE }) },
    fc.integer({ min: 0, max: 0xffff }),
  ),
  eventIdx: fc.boolean(),
  indirect: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
});

function memory() {
  return new GuardedMemory([
    { gpa: A, len: A_END - A },
    { gpa: B, len: B_END - B },
    { gpa: C, len: C_END - C },
  ]);
}

type Outcome = 'chain' | VirtqueueError['kind'];

/** Pops until empty or broken, exercising every chain; returns what happened. Asserts the invariants. */
function drive(g: GuardedMemory, dev: DeviceQueue): Outcome[] {
  const outcomes: Outcome[] = [];
  for (let round = 0; round < SIZE + 2; round++) {
    let chain;
    try {
      chain = dev.pop();
    } catch (e) {
      assert.ok(e instanceof VirtqueueError, `pop threw ${String(e)}`);
      assert.equal(dev.broken, e);
      assert.throws(
        () => dev.pop(),
        (x) => x === e,
      );
      outcomes.push(e.kind);
      break;
    }
    if (chain === null) break;
    outcomes.push('chain');
    for (const s of [...chain.readable, ...chain.writable]) {
      assert.ok(g.mem.contains(s.addr, s.len), `segment [0x${s.addr.toString(16)}, +${s.len}) escaped`);
    }
    const data = chain.read();
    assert.equal(data.length, chain.readableLength);
    const snap = g.snapshot();
    const wrote = chain.write(new Uint8Array(chain.writableLength + 3).fill(0x5a));
    assert.equal(wrote, chain.writableLength);
    const changed = g.changedSince(snap);
    assert.deepEqual(changed.guards, []);
    for (const a of changed.gpas) {
      assert.ok(
        chain.writable.some((s) => a >= s.addr && a < s.addr + s.len),
        `0x${a.toString(16)} changed outside the writable buffers`,
      );
    }
    dev.push(chain.head, wrote);
  }
  assert.deepEqual(g.damagedGuards(), []);
  return outcomes;
}

describe('random rings (property)', () => {
  test('structured random descriptors: only VirtqueueError, no stray writes', () => {
    const seen = new Map<Outcome, number>();
    fc.assert(
      fc.property(arbCase, (c) => {
        const g = memory();
        const layout = contiguousLayout(SIZE, A);
        const peer = new RingPeer(g.mem, layout);
        c.descs.forEach((d, i) => peer.desc(i, d));
        c.tables.forEach((t, k) => t.forEach((d, i) => writeDescAt(g.mem, TABLES[k], i, d)));
        peer.availIdx = c.nextAvail;
        peer.offer(...c.heads);
        peer.availIdx = (c.nextAvail + c.ahead) & 0xffff;
        const dev = new DeviceQueue(g.mem, layout, {
          eventIdx: c.eventIdx,
          indirect: c.indirect,
          nextAvail: c.nextAvail,
        });
        for (const o of drive(g, dev)) seen.set(o, (seen.get(o) ?? 0) + 1);
      }),
      { numRuns: 1000 },
    );
    // The generator must actually reach every outcome, or the property above proves little.
    const kinds = [...seen.keys()].sort();
    if (process.env.FUZZ_STATS) console.log(JSON.stringify([...seen]));
    assert.deepEqual(kinds, [
      'avail-index',
      'chain',
      'head-range',
      'indirect',
      'loop',
      'nested-indirect',
      'order',
      'out-of-bounds',
    ]);
  });

  test('raw random bytes for the descriptor table and avail ring', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16 * SIZE, maxLength: 16 * SIZE }),
        fc.uint8Array({ minLength: 6 + 2 * SIZE, maxLength: 6 + 2 * SIZE }),
        fc.uint8Array({ minLength: 16 * TABLE_ENTRIES, maxLength: 16 * TABLE_ENTRIES }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.boolean(),
        (descBytes, availBytes, tableBytes, nextAvail, indirect) => {
          const g = memory();
          const layout = contiguousLayout(SIZE, A);
          g.mem.write(layout.descAddr, descBytes);
          g.mem.write(layout.availAddr, availBytes);
          g.mem.write(TABLES[0], tableBytes);
          const dev = new DeviceQueue(g.mem, layout, { eventIdx: true, indirect, nextAvail });
          drive(g, dev);
        },
      ),
      { numRuns: 300 },
    );
  });
});
