import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { placeRings } from '../../src/virtqueue/ring-placement.ts';
import { availRingBytes, descTableBytes, usedRingBytes } from '../../src/virtqueue/split-ring.ts';

describe('placeRings', () => {
  test('queues follow one another without overlap, aligned as the spec requires', () => {
    const sizes = [256, 8, 1];
    const { layouts, end } = placeRings(sizes, 0x10001);
    assert.deepEqual(
      layouts.map((l) => l.size),
      sizes,
    );
    let prevEnd = 0x10001;
    for (const l of layouts) {
      assert.equal(l.descAddr % 16, 0);
      assert.equal(l.availAddr % 2, 0);
      assert.equal(l.usedAddr % 4, 0);
      assert.ok(l.descAddr >= prevEnd);
      assert.ok(l.availAddr >= l.descAddr + descTableBytes(l.size));
      assert.ok(l.usedAddr >= l.availAddr + availRingBytes(l.size));
      prevEnd = l.usedAddr + usedRingBytes(l.size);
    }
    assert.ok(end >= prevEnd);
  });
  test('no queues: nothing placed, the free space starts at base', () => {
    assert.deepEqual(placeRings([], 0x2000), { layouts: [], end: 0x2000 });
  });
});
