import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AvailFlag,
  DESC_SIZE,
  DescFlag,
  UsedFlag,
  availRingBytes,
  contiguousLayout,
  descTableBytes,
  isValidQueueSize,
  needEvent,
  usedRingBytes,
} from '../../src/virtqueue/split-ring.ts';

describe('split ring constants and sizes (virtio 1.2 §2.7)', () => {
  test('flags', () => {
    assert.deepEqual(DescFlag, { NEXT: 1, WRITE: 2, INDIRECT: 4 });
    assert.deepEqual(AvailFlag, { NO_INTERRUPT: 1 });
    assert.deepEqual(UsedFlag, { NO_NOTIFY: 1 });
    assert.equal(DESC_SIZE, 16);
  });

  test('ring byte sizes: 16·N, 6 + 2·N, 6 + 8·N', () => {
    assert.deepEqual([descTableBytes(1), availRingBytes(1), usedRingBytes(1)], [16, 8, 14]);
    assert.deepEqual([descTableBytes(256), availRingBytes(256), usedRingBytes(256)], [4096, 518, 2054]);
    assert.deepEqual(
      [descTableBytes(32768), availRingBytes(32768), usedRingBytes(32768)],
      [524288, 65542, 262150],
    );
  });

  test('valid queue sizes are exactly the powers of two 1..32768', () => {
    const valid = [...Array(70000).keys()].filter(isValidQueueSize);
    assert.deepEqual(
      valid,
      Array.from({ length: 16 }, (_, i) => 2 ** i),
    );
    for (const bad of [0, -1, -2, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(isValidQueueSize(bad), false, String(bad));
    }
  });

  test('contiguousLayout aligns desc to 16 and used to 4', () => {
    assert.deepEqual(contiguousLayout(8, 0x10000), {
      size: 8,
      descAddr: 0x10000,
      availAddr: 0x10080,
      usedAddr: 0x10098, // 0x10080 + 22 = 0x10096, aligned up to 4
      bytes: 0x98 + 70,
    });
    assert.deepEqual(contiguousLayout(2, 0x1001), {
      size: 2,
      descAddr: 0x1010, // 0x1001 aligned up to 16
      availAddr: 0x1030,
      usedAddr: 0x103c, // 0x1030 + 10 = 0x103a, aligned up to 4
      bytes: 0x103c + 22 - 0x1001, // counted from base, so the alignment gap is included
    });
  });
});

describe('needEvent (vring_need_event)', () => {
  /** Independent model: notify iff `event` is one of the indices old, old+1, ..., new-1 (mod 2^16). */
  const model = (event: number, newIdx: number, oldIdx: number): boolean => {
    for (let i = oldIdx; i !== newIdx; i = (i + 1) & 0xffff) if (i === event) return true;
    return false;
  };

  test('exact cases', () => {
    assert.equal(needEvent(0, 1, 0), true); // the first entry after 0
    assert.equal(needEvent(0, 2, 1), false); // event already passed before old
    assert.equal(needEvent(1, 2, 1), true);
    assert.equal(needEvent(5, 5, 2), false); // not reached yet: new == event
    assert.equal(needEvent(4, 5, 2), true);
    assert.equal(needEvent(2, 5, 2), true); // event == old is inside the window
    assert.equal(needEvent(7, 7, 7), false); // nothing new
    assert.equal(needEvent(0xffff, 0, 0xfffe), true); // wrap
    assert.equal(needEvent(0xfffe, 0x0003, 0xfffd), true);
    assert.equal(needEvent(0x0003, 0x0003, 0xfffd), false);
    assert.equal(needEvent(0xfffc, 0x0003, 0xfffd), false);
    assert.equal(needEvent(0x0002, 0x0003, 0xfffd), true);
  });

  test('spec formula (u16)(new - event - 1) < (u16)(new - old) agrees with the model (property)', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(u16, fc.integer({ min: 0, max: 600 }), fc.integer({ min: -4, max: 700 }), (old, n, d) => {
        const newIdx = (old + n) & 0xffff;
        const event = (old + d) & 0xffff;
        assert.equal(needEvent(event, newIdx, old), model(event, newIdx, old));
        const spec = ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
        assert.equal(needEvent(event, newIdx, old), spec);
      }),
      { numRuns: 2000 },
    );
  });

  test('exhaustive around the wrap point', () => {
    for (const old of [0xfff0, 0xfffe, 0xffff, 0]) {
      for (let n = 0; n <= 20; n++) {
        const newIdx = (old + n) & 0xffff;
        for (let d = -3; d <= 23; d++) {
          const event = (old + d) & 0xffff;
          assert.equal(
            needEvent(event, newIdx, old),
            d >= 0 && d < n,
            `event ${event} new ${newIdx} old ${old}`,
          );
        }
      }
    }
  });
});
