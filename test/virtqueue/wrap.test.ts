// 16-bit avail/used index wrap-around.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DriverQueue } from '../../src/virtqueue/driver-queue.ts';
import { GuestAllocator } from '../../src/virtqueue/guest-allocator.ts';
import { contiguousLayout } from '../../src/virtqueue/split-ring.ts';
import { GuardedMemory, RingPeer, expectPopBreaks } from './harness.ts';

const BUF = 0x11000;

/** A device queue resumed at nextAvail (as after vhost-user SET_VRING_BASE), with a hand-written driver. */
function resumed(size: number, nextAvail: number, o: { eventIdx?: boolean; nextUsed?: number } = {}) {
  const g = new GuardedMemory([{ gpa: 0x10000, len: 0x4000 }]);
  const layout = contiguousLayout(size, 0x10000);
  const peer = new RingPeer(g.mem, layout);
  // One single-descriptor chain per descriptor: desc i -> 8 readable bytes holding i, then 1 writable.
  for (let i = 0; i < size; i++) {
    peer.desc(i, { addr: BUF + 16 * i, len: 8 });
    g.mem.write(BUF + 16 * i, Uint8Array.of(i, 0, 0, 0, 0, 0, 0, 0));
  }
  peer.availIdx = nextAvail;
  peer.usedIdx = o.nextUsed ?? nextAvail;
  const dev = new DeviceQueue(g.mem, layout, {
    eventIdx: o.eventIdx ?? true,
    indirect: false,
    nextAvail,
    nextUsed: o.nextUsed,
  });
  return { g, layout, peer, dev };
}

describe('index wrap-around with a crafted driver', () => {
  test('pop across 0xffff -> 0: ring slots, heads, lastAvailIndex and avail_event', () => {
    const { peer, dev } = resumed(4, 0xfffe);
    assert.equal(dev.lastAvailIndex, 0xfffe);
    assert.equal(dev.usedIndex, 0xfffe);
    assert.equal(dev.pending(), 0);
    peer.offer(3, 1, 2, 0); // slots 2, 3, 0, 1
    assert.equal(peer.availIdx, 2);
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => peer.availEntry(s)),
      [2, 0, 3, 1],
    );
    assert.equal(dev.pending(), 4);
    const seen: Array<[number, number, number, number]> = [];
    for (let k = 0; k < 4; k++) {
      const c = dev.pop()!;
      seen.push([c.head, c.read()[0], dev.lastAvailIndex, peer.availEvent]);
    }
    assert.deepEqual(seen, [
      [3, 3, 0xffff, 0xffff],
      [1, 1, 0x0000, 0x0000],
      [2, 2, 0x0001, 0x0001],
      [0, 0, 0x0002, 0x0002],
    ]);
    assert.equal(dev.pop(), null);
    assert.equal(dev.pending(), 0);
  });

  test('push across 0xffff -> 0: used slots, used idx and used_event notifications', () => {
    const { peer, dev } = resumed(4, 0xfffe);
    peer.usedEvent = 0xffff;
    assert.equal(dev.needsNotify(), false, 'nothing used yet');
    dev.push(3, 0x11); // used idx 0xffff, slot 2
    assert.equal(dev.needsNotify(), true, 'the first entries after a (re)start always notify');
    dev.push(1, 0x22); // used idx 0, slot 3: entry 0xffff used
    assert.equal(dev.needsNotify(), true);
    peer.usedEvent = 1;
    dev.push(2, 0x33); // 1, slot 0
    dev.push(0, 0x44); // 2, slot 1
    assert.equal(dev.needsNotify(), true);
    assert.equal(peer.usedIdx, 2);
    assert.equal(dev.usedIndex, 2);
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => peer.usedElem(s)),
      [
        { id: 2, len: 0x33 },
        { id: 0, len: 0x44 },
        { id: 3, len: 0x11 },
        { id: 1, len: 0x22 },
      ],
    );
  });

  test('nextUsed may lag nextAvail (chains in flight across a restart)', () => {
    const { peer, dev } = resumed(4, 0x0001, { nextUsed: 0xffff });
    assert.equal(dev.usedIndex, 0xffff);
    dev.push(2, 5); // slot 3
    dev.push(1, 6); // slot 0
    assert.equal(peer.usedIdx, 1);
    assert.deepEqual(
      [peer.usedElem(3), peer.usedElem(0)],
      [
        { id: 2, len: 5 },
        { id: 1, len: 6 },
      ],
    );
  });

  test('pending counts across the wrap: exactly a full queue is fine, one more is avail-index', () => {
    const ok = resumed(4, 0xfffc);
    ok.peer.availIdx = 0x0000;
    assert.equal(ok.dev.pending(), 4);

    const bad = resumed(4, 0xfffc);
    bad.peer.availIdx = 0x0001;
    expectPopBreaks(bad.dev, bad.g, 'avail-index');
  });

  test('nextAvail and nextUsed are taken modulo 2^16', () => {
    const { g } = resumed(4, 0);
    const opts = { eventIdx: false, indirect: false, nextAvail: 0x1fffe, nextUsed: 0x3fffd };
    const d = new DeviceQueue(g.mem, contiguousLayout(4, 0x10000), opts);
    assert.equal(d.lastAvailIndex, 0xfffe);
    assert.equal(d.usedIndex, 0xfffd);
  });

  test('without nextUsed the used idx found in the ring is kept', () => {
    const { g, peer } = resumed(4, 0);
    peer.usedIdx = 0xfff1;
    const d = new DeviceQueue(g.mem, contiguousLayout(4, 0x10000), {
      eventIdx: false,
      indirect: false,
      nextAvail: 0xfff3,
    });
    assert.equal(d.usedIndex, 0xfff1);
    d.push(1, 9);
    assert.equal(peer.usedIdx, 0xfff2);
    assert.deepEqual(peer.usedElem(0xfff1 % 4), { id: 1, len: 9 });
  });
});

describe('index wrap-around driven by the real driver', () => {
  for (const eventIdx of [true, false]) {
    test(`more than 65536 chains through a 2-entry queue (EVENT_IDX ${eventIdx})`, () => {
      const g = new GuardedMemory([{ gpa: 0x10000, len: 0x2000 }]);
      const layout = contiguousLayout(2, 0x10000);
      const alloc = new GuestAllocator(0x10100, 0x1000);
      const drv = new DriverQueue<number>(g.mem, layout, alloc, { eventIdx, indirect: false });
      const dev = new DeviceQueue(g.mem, layout, { eventIdx, indirect: false });
      const peer = new RingPeer(g.mem, layout);
      const N = 65536 + 70;
      const req = new Uint8Array(4);
      const reqView = new DataView(req.buffer);
      let kicks = 0;
      let irqs = 0;
      for (let i = 0; i < N; i++) {
        reqView.setUint32(0, i, true);
        drv.add({ readable: [req], writable: [4] }, i);
        if (drv.kickNeeded()) kicks++;
        const c = dev.pop();
        assert.ok(c);
        const got = new DataView(c.read().buffer).getUint32(0, true);
        if (got !== i) assert.equal(got, i);
        c.write(c.read());
        dev.push(c.head, 4);
        if (dev.needsNotify()) irqs++;
        const used = drv.collect();
        if (used.length !== 1 || used[0].token !== i || used[0].len !== 4)
          assert.deepEqual(
            used.map((u) => [u.token, u.len]),
            [[i, 4]],
          );
        const echoed = new DataView(used[0].data.buffer).getUint32(0, true);
        if (echoed !== i) assert.equal(echoed, i);
      }
      assert.equal(kicks, N, 'every add found the device waiting');
      assert.equal(irqs, N, 'every completion found the driver waiting');
      assert.equal(dev.lastAvailIndex, N & 0xffff);
      assert.equal(dev.usedIndex, N & 0xffff);
      assert.equal(peer.availIdx, N & 0xffff);
      assert.equal(peer.usedIdx, N & 0xffff);
      assert.equal(drv.outstanding, 0);
      assert.equal(alloc.allocated, 0);
      assert.deepEqual(g.damagedGuards(), []);
    });
  }
});
