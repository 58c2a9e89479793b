// Notification suppression in both directions, with and without VIRTIO_F_EVENT_IDX.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DriverQueue } from '../../src/virtqueue/driver-queue.ts';
import { GuestAllocator } from '../../src/virtqueue/guest-allocator.ts';
import { AvailFlag, UsedFlag, contiguousLayout } from '../../src/virtqueue/split-ring.ts';
import { GuardedMemory, RingPeer } from './harness.ts';

function pair(eventIdx: boolean, size = 8) {
  const g = new GuardedMemory([{ gpa: 0x10000, len: 0x8000 }]);
  const layout = contiguousLayout(size, 0x10000);
  const alloc = new GuestAllocator(0x11000, 0x7000);
  const drv = new DriverQueue<number>(g.mem, layout, alloc, { eventIdx, indirect: false });
  const dev = new DeviceQueue(g.mem, layout, { eventIdx, indirect: false });
  const peer = new RingPeer(g.mem, layout);
  let next = 0;
  const add = (n = 1) => {
    for (let i = 0; i < n; i++) drv.add({ readable: [Uint8Array.of(next)], writable: [1] }, next++);
  };
  /** Device: pop everything available and complete it. */
  const serve = () => {
    let c;
    let n = 0;
    while ((c = dev.pop()) !== null) {
      dev.push(c.head, 0);
      n++;
    }
    return n;
  };
  return { g, drv, dev, peer, add, serve };
}

describe('device -> driver interrupts, no EVENT_IDX (avail.flags NO_INTERRUPT)', () => {
  test('notify after new used entries unless NO_INTERRUPT; never for nothing new', () => {
    const { dev, peer, add, serve } = pair(false);
    assert.equal(dev.needsNotify(), false, 'nothing used yet: no notification');
    add();
    assert.equal(serve(), 1);
    assert.equal(dev.needsNotify(), true);
    assert.equal(dev.needsNotify(), false);

    peer.availFlags = AvailFlag.NO_INTERRUPT;
    add(2);
    assert.equal(serve(), 2);
    assert.equal(dev.needsNotify(), false, 'driver suppressed interrupts');

    peer.availFlags = 0;
    assert.equal(dev.needsNotify(), false, 'those entries were already accounted for');
    add();
    serve();
    assert.equal(dev.needsNotify(), true);
  });

  test('used_event is ignored and avail_event is not written without EVENT_IDX', () => {
    const { dev, peer, add, serve } = pair(false);
    dev.needsNotify();
    peer.usedEvent = 0x1234; // would suppress with EVENT_IDX
    peer.availEvent = 0xabcd;
    add(3);
    serve();
    assert.equal(dev.needsNotify(), true);
    assert.equal(peer.availEvent, 0xabcd);
  });
});

describe('device -> driver interrupts with EVENT_IDX (used_event)', () => {
  test('notify exactly when the used idx passes used_event', () => {
    const { dev, peer } = pair(true);
    assert.equal(dev.needsNotify(), false, 'nothing used yet');
    peer.usedEvent = 0;
    dev.push(0, 0); // used idx 1: entry 0 is new
    assert.equal(dev.needsNotify(), true);
    dev.push(0, 0); // used idx 2: driver still waits on entry 0, already signalled
    assert.equal(dev.needsNotify(), false);
    peer.usedEvent = 2;
    dev.push(0, 0); // used idx 3: entry 2 is new
    assert.equal(dev.needsNotify(), true);
    peer.usedEvent = 5;
    dev.push(0, 0); // 4
    assert.equal(dev.needsNotify(), false);
    dev.push(0, 0); // 5: entry 5 not used yet
    assert.equal(dev.needsNotify(), false);
    dev.push(0, 0);
    dev.push(0, 0); // 7: entries 5 and 6 new in one batch
    assert.equal(dev.needsNotify(), true);
    assert.equal(dev.needsNotify(), false, 'nothing new');
  });

  test('NO_INTERRUPT is ignored when EVENT_IDX is negotiated', () => {
    const { dev, peer } = pair(true);
    dev.needsNotify();
    peer.availFlags = AvailFlag.NO_INTERRUPT;
    peer.usedEvent = 0;
    dev.push(0, 0);
    assert.equal(dev.needsNotify(), true);
  });

  test('DriverQueue.collect re-arms used_event so the next completion interrupts', () => {
    const { drv, dev, peer, add } = pair(true);
    add(3);
    const chains = [dev.pop()!, dev.pop()!, dev.pop()!];
    dev.needsNotify();
    assert.equal(peer.usedEvent, 0);
    dev.push(chains[0].head, 1);
    assert.equal(dev.needsNotify(), true);
    dev.push(chains[1].head, 1);
    assert.equal(dev.needsNotify(), false, 'driver has not looked yet');
    assert.deepEqual(
      drv.collect().map((u) => u.token),
      [0, 1],
    );
    assert.equal(peer.usedEvent, 2);
    dev.push(chains[2].head, 1);
    assert.equal(dev.needsNotify(), true);
  });

  test('collect does not write used_event without EVENT_IDX', () => {
    const { drv, peer, add, serve } = pair(false);
    peer.usedEvent = 0x7777;
    add(2);
    serve();
    assert.equal(drv.collect().length, 2);
    assert.equal(peer.usedEvent, 0x7777);
  });

  test('the device publishes avail_event = next avail index after every pop', () => {
    const { dev, peer, add } = pair(true);
    add(3);
    assert.equal(peer.availEvent, 0);
    dev.pop();
    assert.equal(peer.availEvent, 1);
    dev.pop();
    dev.pop();
    assert.equal(peer.availEvent, 3);
    assert.equal(dev.pop(), null);
    assert.equal(peer.availEvent, 3);
  });
});

describe('driver -> device kicks, no EVENT_IDX (used.flags NO_NOTIFY)', () => {
  test('kick after adds unless NO_NOTIFY; never for nothing new', () => {
    const { drv, peer, add } = pair(false);
    assert.equal(drv.kickNeeded(), false, 'nothing added');
    add();
    assert.equal(drv.kickNeeded(), true);
    assert.equal(drv.kickNeeded(), false);
    peer.usedFlags = UsedFlag.NO_NOTIFY;
    add(2);
    assert.equal(drv.kickNeeded(), false, 'device suppressed kicks');
    peer.usedFlags = 0;
    assert.equal(drv.kickNeeded(), false, 'already accounted for');
    peer.availEvent = 0x4321; // ignored without EVENT_IDX
    add();
    assert.equal(drv.kickNeeded(), true);
  });
});

describe('driver -> device kicks with EVENT_IDX (avail_event)', () => {
  test('kick exactly when the avail idx passes avail_event', () => {
    const { drv, dev, peer, add, serve } = pair(true);
    add(); // idx 1, avail_event 0
    assert.equal(drv.kickNeeded(), true);
    add(2); // idx 3, device has not caught up: avail_event still 0
    assert.equal(drv.kickNeeded(), false);
    assert.equal(serve(), 3);
    assert.equal(peer.availEvent, 3);
    assert.equal(drv.collect().length, 3);
    add(); // idx 4: entry 3 is new
    assert.equal(drv.kickNeeded(), true);
    assert.equal(drv.kickNeeded(), false);
    assert.equal(serve(), 1);
    assert.equal(drv.collect().length, 1);

    peer.availEvent = 6;
    add(); // 5
    assert.equal(drv.kickNeeded(), false);
    add(); // 6: entry 6 not added yet
    assert.equal(drv.kickNeeded(), false);
    add(); // 7: entry 6 added
    assert.equal(drv.kickNeeded(), true);
    assert.equal(dev.pending(), 3);
  });

  test('several adds between kick checks are one window', () => {
    const { drv, peer, add } = pair(true);
    peer.availEvent = 2;
    add(4); // entries 0..3 include 2
    assert.equal(drv.kickNeeded(), true);
  });

  test('NO_NOTIFY is ignored when EVENT_IDX is negotiated', () => {
    const { drv, peer, add } = pair(true);
    peer.usedFlags = UsedFlag.NO_NOTIFY;
    peer.availEvent = 0;
    add();
    assert.equal(drv.kickNeeded(), true);
  });
});
