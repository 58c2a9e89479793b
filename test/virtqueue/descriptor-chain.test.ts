// A popped chain copies straight to and from the mapped region that holds each segment (found while
// the queue validated it); a segment across two regions, or in a region that was unmapped since,
// goes through GuestMemory, which gathers across regions or refuses.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { GuestMemory, GuestMemoryError } from '../../src/virtqueue/guest-memory.ts';
import { DescFlag, contiguousLayout } from '../../src/virtqueue/split-ring.ts';
import { GuardedMemory, RingPeer } from './harness.ts';

// Region A [0x1000, 0x2000) holds the ring and ends where region B [0x2000, 0x3000) starts.
const A = 0x1000;
const B = 0x2000;
const SIZE = 4;

function rig() {
  const g = new GuardedMemory([
    { gpa: A, len: 0x1000 },
    { gpa: B, len: 0x1000 },
  ]);
  const layout = contiguousLayout(SIZE, A);
  const peer = new RingPeer(g.mem, layout);
  const queue = new DeviceQueue(g.mem, layout, { eventIdx: false, indirect: false });
  return { g, peer, queue };
}

describe('DescriptorChain copies', () => {
  test('a segment inside one region is read and written in place, at its offset in the region', () => {
    const { g, peer, queue } = rig();
    g.mem.write(B + 0x100, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    peer.desc(0, { addr: B + 0x100, len: 8, flags: DescFlag.NEXT, next: 1 });
    peer.desc(1, { addr: A + 0x800, len: 2, flags: DescFlag.WRITE });
    peer.offer(0);
    const chain = queue.popTransient();
    assert.ok(chain);
    const src = chain.directReadable(8);
    assert.ok(src);
    assert.deepEqual([...src.subarray(chain.directOffset, chain.directOffset + 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(chain.directReadable(9), null, 'more than the segment holds');
    const dst = chain.directWritable(2);
    assert.ok(dst);
    dst[chain.directOffset] = 0xab;
    dst[chain.directOffset + 1] = 0xcd;
    assert.deepEqual([...g.mem.read(A + 0x800, 2)], [0xab, 0xcd]);
    assert.deepEqual(g.damagedGuards(), []);
  });

  test('a segment across two adjacent regions is gathered and scattered through both', () => {
    const { g, peer, queue } = rig();
    g.mem.write(B - 3, Uint8Array.of(9, 8, 7, 6, 5, 4, 3, 2)); // 3 bytes in A, 5 in B
    peer.desc(0, { addr: B - 3, len: 8, flags: DescFlag.NEXT, next: 1 });
    peer.desc(1, { addr: B - 1, len: 2, flags: DescFlag.WRITE });
    peer.offer(0);
    const chain = queue.popTransient();
    assert.ok(chain);
    assert.equal(chain.directReadable(8), null);
    assert.equal(chain.directWritable(2), null);
    assert.deepEqual([...chain.read()], [9, 8, 7, 6, 5, 4, 3, 2]);
    assert.equal(chain.write(Uint8Array.of(0x11, 0x22)), 2);
    assert.deepEqual([...g.mem.read(B - 1, 2)], [0x11, 0x22]);
    assert.deepEqual(g.damagedGuards(), []);
  });

  test('lookups that alternate between regions find the right one each time', () => {
    const { g } = rig();
    for (let i = 0; i < 4; i++) {
      assert.equal(g.mem.regionAt(A + i)?.guestPhysAddr, A);
      assert.equal(g.mem.regionAt(B + i)?.guestPhysAddr, B);
      assert.equal(g.mem.regionAt(B + 0x1000 + i), undefined);
    }
    assert.equal(g.mem.contains(B - 2, 4), true);
    assert.equal(g.mem.contains(B + 0xffe, 4), false);
  });

  test('a chain whose region was unmapped since it was popped refuses to read or write', () => {
    const buffer = new ArrayBuffer(0x2000);
    const mem = new GuestMemory([{ guestPhysAddr: A, bytes: new Uint8Array(buffer) }]);
    const layout = contiguousLayout(SIZE, A);
    const peer = new RingPeer(mem, layout);
    const queue = new DeviceQueue(mem, layout, { eventIdx: false, indirect: false });
    peer.desc(0, { addr: A + 0x800, len: 8, flags: DescFlag.NEXT, next: 1 });
    peer.desc(1, { addr: A + 0x900, len: 2, flags: DescFlag.WRITE });
    peer.offer(0);
    const chain = queue.pop(); // held, as the eventq holds its chains
    assert.ok(chain);
    // Detaching the buffer is what unmapping does to its views: they read as length 0.
    structuredClone(buffer, { transfer: [buffer] });
    assert.equal(chain.directReadable(8), null);
    assert.equal(chain.directWritable(2), null);
    assert.throws(() => chain.read(), GuestMemoryError);
    assert.throws(() => chain.write(Uint8Array.of(1)), GuestMemoryError);
  });
});
