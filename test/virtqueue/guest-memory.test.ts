import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GuestMemory, GuestMemoryError } from '../../src/virtqueue/guest-memory.ts';
import { GuardedMemory, pattern } from './harness.ts';

/** assert.throws matcher: exactly a GuestMemoryError for [addr, +length). */
const outside =
  (addr?: number, length?: number) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof GuestMemoryError, `expected GuestMemoryError, got ${String(e)}`);
    if (addr !== undefined) assert.equal(e.addr, addr);
    if (length !== undefined) assert.equal(e.length, length);
    return true;
  };

// Three regions: A [0x1000, 0x2000) and B [0x2000, 0x2800) are adjacent; C [0x4000, 0x4100) follows a gap.
const specs = [
  { gpa: 0x4000, len: 0x100 },
  { gpa: 0x1000, len: 0x1000 },
  { gpa: 0x2000, len: 0x800 },
];

describe('GuestMemory regions', () => {
  test('regions are kept sorted by guest-physical address', () => {
    const g = new GuardedMemory(specs);
    assert.deepEqual(
      g.mem.regions.map((r) => [r.guestPhysAddr, r.bytes.length]),
      [
        [0x1000, 0x1000],
        [0x2000, 0x800],
        [0x4000, 0x100],
      ],
    );
  });

  test('regionAt: first byte, last byte, one past the end, gaps', () => {
    const { mem } = new GuardedMemory(specs);
    assert.equal(mem.regionAt(0x1000)?.guestPhysAddr, 0x1000);
    assert.equal(mem.regionAt(0x1fff)?.guestPhysAddr, 0x1000);
    assert.equal(mem.regionAt(0x2000)?.guestPhysAddr, 0x2000);
    assert.equal(mem.regionAt(0x27ff)?.guestPhysAddr, 0x2000);
    assert.equal(mem.regionAt(0x2800), undefined);
    assert.equal(mem.regionAt(0x3fff), undefined);
    assert.equal(mem.regionAt(0x40ff)?.guestPhysAddr, 0x4000);
    assert.equal(mem.regionAt(0x4100), undefined);
    assert.equal(mem.regionAt(0xfff), undefined);
    assert.equal(mem.regionAt(-1), undefined);
    assert.equal(mem.regionAt(Number.NaN), undefined);
  });

  test('overlapping regions are rejected whatever the order', () => {
    const r = (gpa: number, len: number) => ({ guestPhysAddr: gpa, bytes: new Uint8Array(len) });
    const cases = [
      [r(0x1000, 0x1000), r(0x1fff, 0x10)], // last byte shared
      [r(0x1000, 0x1000), r(0x1000, 0x1000)], // identical
      [r(0x1000, 0x1000), r(0x1800, 0x10)], // contained
      [r(0x1000, 0x100), r(0x0, 0x10000)], // containing
      [r(0x0, 0x10), r(0x100, 0x10), r(0x8, 0x10)], // overlap with the first of three
    ];
    for (const regions of cases) {
      assert.throws(() => new GuestMemory(regions), RangeError);
      assert.throws(() => new GuestMemory([...regions].reverse()), RangeError);
    }
  });

  test('adjacent regions are accepted', () => {
    const mem = new GuestMemory([
      { guestPhysAddr: 0x2000, bytes: new Uint8Array(0x1000) },
      { guestPhysAddr: 0x1000, bytes: new Uint8Array(0x1000) },
    ]);
    assert.equal(mem.regions.length, 2);
  });

  test('an empty region overlaps nothing, whatever the argument order', () => {
    const big = { guestPhysAddr: 0x1000, bytes: new Uint8Array(0x1000) };
    for (const gpa of [0x1000, 0x1800]) {
      const empty = { guestPhysAddr: gpa, bytes: new Uint8Array(0) };
      assert.equal(new GuestMemory([big, empty]).regions.length, 2, `empty at 0x${gpa.toString(16)} after`);
      assert.equal(new GuestMemory([empty, big]).regions.length, 2, `empty at 0x${gpa.toString(16)} before`);
    }
  });
});

describe('GuestMemory.contains', () => {
  const { mem } = new GuardedMemory(specs);

  test('whole regions and their edges', () => {
    assert.equal(mem.contains(0x1000, 0x1000), true);
    assert.equal(mem.contains(0x1fff, 1), true);
    assert.equal(mem.contains(0x4000, 0x100), true);
    assert.equal(mem.contains(0x4000, 0x101), false);
    assert.equal(mem.contains(0x40ff, 2), false);
    assert.equal(mem.contains(0xfff, 2), false);
    assert.equal(mem.contains(0x4100, 1), false);
  });

  test('a range spanning adjacent regions is contained; one crossing a gap is not', () => {
    assert.equal(mem.contains(0x1000, 0x1800), true);
    assert.equal(mem.contains(0x1ff0, 0x20), true);
    assert.equal(mem.contains(0x1000, 0x1801), false);
    assert.equal(mem.contains(0x27f0, 0x1810), false);
  });

  test('zero length is vacuously contained at any safe address', () => {
    assert.equal(mem.contains(0x1000, 0), true);
    assert.equal(mem.contains(0x3000, 0), true);
    assert.equal(mem.contains(Number.MAX_SAFE_INTEGER, 0), true);
  });

  test('negative, fractional, NaN, infinite and beyond-2^53 arguments are not contained', () => {
    assert.equal(mem.contains(-1, 2), false);
    assert.equal(mem.contains(0x1000, -1), false);
    assert.equal(mem.contains(4096.5, 1), false);
    assert.equal(mem.contains(0x1000, 1.5), false);
    assert.equal(mem.contains(Number.NaN, 1), false);
    assert.equal(mem.contains(0x1000, Number.NaN), false);
    assert.equal(mem.contains(0x1000, Number.POSITIVE_INFINITY), false);
    assert.equal(mem.contains(2 ** 53, 1), false);
    assert.equal(mem.contains(2 ** 64, 0), false);
    assert.equal(mem.contains(Number.MAX_SAFE_INTEGER, 1), false);
  });
});

describe('GuestMemory read/write/view', () => {
  test('read and write inside one region hit exactly the right bytes', () => {
    const g = new GuardedMemory(specs);
    const snap = g.snapshot();
    g.mem.write(0x1010, Uint8Array.of(1, 2, 3));
    assert.deepEqual(g.changedSince(snap), { gpas: [0x1010, 0x1011, 0x1012], guards: [] });
    assert.deepEqual([...g.mem.read(0x100f, 5)], [0, 1, 2, 3, 0]);
  });

  test('a write spanning two adjacent regions is split between them', () => {
    const g = new GuardedMemory(specs);
    g.mem.write(0x1ffd, Uint8Array.of(9, 8, 7, 6, 5));
    const a = g.mem.regions[0].bytes;
    const b = g.mem.regions[1].bytes;
    assert.deepEqual([...a.subarray(0xffd)], [9, 8, 7]);
    assert.deepEqual([...b.subarray(0, 3)], [6, 5, 0]);
    assert.deepEqual([...g.mem.read(0x1ffc, 7)], [0, 9, 8, 7, 6, 5, 0]);
    assert.deepEqual(g.damagedGuards(), []);
  });

  test('a read over the whole of A and B returns them concatenated', () => {
    const g = new GuardedMemory(specs);
    const data = pattern(0x1800, 3);
    g.mem.write(0x1000, data);
    assert.deepEqual(g.mem.read(0x1000, 0x1800), data);
    assert.deepEqual(g.damagedGuards(), []);
  });

  test('write crossing a gap or the end throws and changes nothing', () => {
    const g = new GuardedMemory(specs);
    const snap = g.snapshot();
    assert.throws(() => g.mem.write(0x27fe, Uint8Array.of(1, 2, 3)), outside(0x27fe, 3));
    assert.throws(() => g.mem.write(0x40fc, new Uint8Array(5).fill(7)), outside(0x40fc, 5));
    assert.throws(() => g.mem.write(0xffe, Uint8Array.of(1, 2, 3)), outside(0xffe, 3));
    assert.deepEqual(g.changedSince(snap), { gpas: [], guards: [] });
  });

  test('read outside or with a bad length is a GuestMemoryError, never a raw RangeError', () => {
    const { mem } = new GuardedMemory(specs);
    assert.throws(() => mem.read(0x2800, 1), outside(0x2800, 1));
    assert.throws(() => mem.read(0x1000, -1), outside(0x1000, -1));
    assert.throws(() => mem.read(0x1000, 2 ** 40), outside(0x1000, 2 ** 40));
    assert.throws(() => mem.read(0x1000, 1.5), outside());
    assert.throws(() => mem.read(2 ** 60, 4), outside());
  });

  test('zero-length read/write inside memory are no-ops', () => {
    const g = new GuardedMemory(specs);
    const snap = g.snapshot();
    assert.equal(g.mem.read(0x1000, 0).length, 0);
    g.mem.write(0x1000, new Uint8Array(0));
    assert.deepEqual(g.changedSince(snap), { gpas: [], guards: [] });
  });

  test('view and dataView alias guest memory inside one region', () => {
    const g = new GuardedMemory(specs);
    const v = g.mem.view(0x2010, 4);
    v.set([1, 2, 3, 4]);
    assert.deepEqual([...g.mem.read(0x2010, 4)], [1, 2, 3, 4]);
    const dv = g.mem.dataView(0x2010, 4);
    assert.equal(dv.getUint32(0, true), 0x04030201);
    dv.setUint16(2, 0xbeef, true);
    assert.deepEqual([...g.mem.read(0x2012, 2)], [0xef, 0xbe]);
    assert.equal(g.mem.view(0x27ff, 1).length, 1);
    assert.equal(g.mem.view(0x2800 - 4, 4).length, 4);
  });

  test('view refuses ranges not inside one region, and bad lengths', () => {
    const { mem } = new GuardedMemory(specs);
    assert.throws(() => mem.view(0x1ff0, 0x20), outside(0x1ff0, 0x20)); // spans A and B
    assert.throws(() => mem.view(0x27ff, 2), outside(0x27ff, 2));
    assert.throws(() => mem.view(0x3000, 0), outside(0x3000, 0));
    assert.throws(() => mem.view(0x1000, -1), outside(0x1000, -1));
    assert.throws(() => mem.view(0x1000, 1.5), outside(0x1000, 1.5));
    assert.throws(() => mem.view(0x1000, Number.NaN), outside());
    assert.throws(() => mem.dataView(0x40f8, 16), outside(0x40f8, 16));
  });

  test('GuestMemoryError message names the range', () => {
    const { mem } = new GuardedMemory(specs);
    assert.throws(() => mem.read(0x3000, 16), {
      name: 'GuestMemoryError',
      message: 'guest memory access [0x3000, +16) is outside every region',
    });
  });

  test('random accesses (property): succeed iff contained, and never touch a guard byte', () => {
    const g = new GuardedMemory(specs);
    const addr = fc.oneof(
      fc.integer({ min: 0xff0, max: 0x4110 }),
      fc.constantFrom(0x1000, 0x1fff, 0x2000, 0x27ff, 0x2800, 0x4000, 0x40ff, 0x4100),
    );
    fc.assert(
      fc.property(addr, fc.integer({ min: 0, max: 0x40 }), fc.boolean(), (a, len, doWrite) => {
        const ok = g.mem.contains(a, len);
        try {
          if (doWrite) g.mem.write(a, new Uint8Array(len).fill(0x3c));
          else assert.equal(g.mem.read(a, len).length, len);
          assert.ok(ok, `access [0x${a.toString(16)}, +${len}) should have failed`);
        } catch (e) {
          assert.ok(e instanceof GuestMemoryError, String(e));
          assert.ok(!ok, `access [0x${a.toString(16)}, +${len}) should have worked`);
        }
        assert.deepEqual(g.damagedGuards(), []);
      }),
      { numRuns: 300 },
    );
  });
});

describe('unmapped regions', () => {
  test('a zero-length region fails every bounds check with GuestMemoryError', () => {
    const mem = new GuestMemory([
      { guestPhysAddr: 0x1000, bytes: new Uint8Array(0x1000) },
      { guestPhysAddr: 0x2000, bytes: new Uint8Array(0) }, // "unmapped"
    ]);
    assert.equal(mem.regionAt(0x2000), undefined);
    assert.equal(mem.contains(0x2000, 1), false);
    assert.equal(mem.contains(0x1fff, 2), false);
    assert.throws(() => mem.read(0x2000, 1), outside(0x2000, 1));
    assert.throws(() => mem.write(0x1ffe, Uint8Array.of(1, 2, 3)), outside(0x1ffe, 3));
    assert.throws(() => mem.view(0x2000, 0), outside(0x2000, 0));
    assert.throws(() => mem.dataView(0x2000, 4), outside(0x2000, 4));
    assert.deepEqual([...mem.regions[0].bytes.subarray(0xffe)], [0, 0]);
  });

  test('a region whose buffer gets detached after construction reads as empty, no TypeError', () => {
    const live = new ArrayBuffer(0x100);
    const doomed = new ArrayBuffer(0x200);
    const mem = new GuestMemory([
      { guestPhysAddr: 0x1000, bytes: new Uint8Array(live) },
      { guestPhysAddr: 0x1100, bytes: new Uint8Array(doomed, 0x100, 0x100) },
    ]);
    mem.write(0x10fe, Uint8Array.of(1, 2, 3, 4));
    assert.deepEqual([...mem.read(0x10fe, 4)], [1, 2, 3, 4]);

    structuredClone(doomed, { transfer: [doomed] }); // detaches `doomed`, like munmap would
    assert.equal(doomed.byteLength, 0);

    assert.equal(mem.regionAt(0x1100), undefined);
    assert.equal(mem.contains(0x1100, 1), false);
    assert.equal(mem.contains(0x10ff, 2), false);
    assert.equal(mem.contains(0x1000, 0x100), true);
    assert.throws(() => mem.read(0x1100, 4), outside(0x1100, 4));
    assert.throws(() => mem.read(0x10fe, 4), outside(0x10fe, 4));
    assert.throws(() => mem.write(0x1180, Uint8Array.of(9)), outside(0x1180, 1));
    assert.throws(() => mem.view(0x1100, 1), outside(0x1100, 1));
    assert.throws(() => mem.dataView(0x1100, 0), outside(0x1100, 0));
    // The still-mapped region is untouched and usable.
    assert.deepEqual([...mem.read(0x10fe, 2)], [1, 2]);
  });
});
