import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GuestAllocator } from '../../src/virtqueue/guest-allocator.ts';
import { expectVirtqueueError } from './harness.ts';

describe('GuestAllocator', () => {
  test('allocations are first-fit, 16-byte grained, starting at the aligned base', () => {
    const a = new GuestAllocator(0x1003, 0x100);
    assert.equal(a.alloc(1), 0x1010);
    assert.equal(a.alloc(16), 0x1020);
    assert.equal(a.alloc(17), 0x1030); // takes 32
    assert.equal(a.alloc(0), 0x1050); // a zero-byte buffer still gets 16
    assert.equal(a.allocated, 4);
  });

  test('capacity is the aligned part of the range; then VirtqueueError full', () => {
    // [0x1003, 0x1103): aligned start 0x1010, 0xf3 bytes left -> 15 blocks of 16.
    const a = new GuestAllocator(0x1003, 0x100);
    const got = Array.from({ length: 15 }, () => a.alloc(16));
    assert.deepEqual(
      got,
      Array.from({ length: 15 }, (_, i) => 0x1010 + 16 * i),
    );
    expectVirtqueueError(() => a.alloc(1), 'full');
    assert.equal(a.allocated, 15);
  });

  test('a request bigger than any free block is full even when the total would fit', () => {
    const a = new GuestAllocator(0, 64);
    const [p0, , p2] = [a.alloc(16), a.alloc(16), a.alloc(16), a.alloc(16)];
    a.release(p0);
    a.release(p2);
    expectVirtqueueError(() => a.alloc(32), 'full');
    assert.equal(a.alloc(16), 0); // first fit: the lowest hole
    assert.equal(a.alloc(16), 32);
  });

  test('release coalesces with the next block, the previous block, and both', () => {
    const a = new GuestAllocator(0, 64);
    const [p0, p1, p2, p3] = [a.alloc(16), a.alloc(16), a.alloc(16), a.alloc(16)];
    assert.deepEqual([p0, p1, p2, p3], [0, 16, 32, 48]);
    a.release(p2); // hole [32, 48)
    a.release(p3); // merges with the previous hole -> [32, 64)
    assert.equal(a.alloc(32), 32);
    a.release(32);
    a.release(p0); // hole [0, 16) and [32, 64)
    a.release(p1); // bridges both -> [0, 64)
    assert.equal(a.allocated, 0);
    assert.equal(a.alloc(64), 0);
  });

  test('release merging with the following block only', () => {
    const a = new GuestAllocator(0, 48);
    const [p0, p1, p2] = [a.alloc(16), a.alloc(16), a.alloc(16)];
    a.release(p1); // [16, 32)
    a.release(p0); // merges forward -> [0, 32)
    assert.equal(a.alloc(32), 0);
    a.release(p2);
    assert.equal(a.alloc(16), 32);
  });

  test('releasing something not allocated, or twice, is a RangeError', () => {
    const a = new GuestAllocator(0x100, 0x100);
    const p = a.alloc(8);
    assert.throws(() => a.release(p + 16), RangeError);
    a.release(p);
    assert.throws(() => a.release(p), RangeError);
    assert.equal(a.allocated, 0);
  });

  test('random alloc/release (property): live blocks never overlap and stay in range; full release restores all', () => {
    const base = 0x2008; // aligned start 0x2010
    const length = 0x400; // usable [0x2010, 0x2400)
    const op = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), len: fc.integer({ min: 0, max: 200 }) }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const a = new GuestAllocator(base, length);
        const live = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'alloc') {
            const need = Math.max(16, Math.ceil(o.len / 16) * 16);
            let addr: number;
            try {
              addr = a.alloc(o.len);
            } catch {
              // full: there really is no free run of `need` bytes
              const blocks = [...live].sort((x, y) => x[0] - y[0]);
              let at = 0x2010;
              for (const [s, l] of blocks) {
                assert.ok(s - at < need, `a ${need}-byte hole at 0x${at.toString(16)} was missed`);
                at = s + l;
              }
              assert.ok(0x2400 - at < need, `a ${need}-byte hole at the end was missed`);
              continue;
            }
            assert.equal(addr % 16, 0);
            assert.ok(addr >= 0x2010 && addr + need <= 0x2400);
            for (const [s, l] of live) assert.ok(addr + need <= s || s + l <= addr, 'overlap');
            live.set(addr, need);
          } else if (live.size > 0) {
            const addr = [...live.keys()][o.pick % live.size];
            a.release(addr);
            live.delete(addr);
          }
          assert.equal(a.allocated, live.size);
        }
        for (const addr of live.keys()) a.release(addr);
        assert.equal(a.alloc(0x3f0), 0x2010);
      }),
      { numRuns: 300 },
    );
  });
});
