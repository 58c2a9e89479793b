import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { DriverQueue } from '../../src/virtqueue/driver-queue.ts';
import { GuestAllocator } from '../../src/virtqueue/guest-allocator.ts';
import { GuestMemory } from '../../src/virtqueue/guest-memory.ts';
import { contiguousLayout } from '../../src/virtqueue/split-ring.ts';

// Busy polling's ring half: while the device suppresses kicks the driver sends none, and
// allowKicks() finds every chain added meanwhile (the re-check that loses no kick).

function pair(eventIdx: boolean) {
  const mem = new GuestMemory([{ guestPhysAddr: 0, bytes: new Uint8Array(0x10000) }]);
  const layout = contiguousLayout(16, 0);
  const opts = { eventIdx, indirect: false };
  const driver = new DriverQueue<number>(mem, layout, new GuestAllocator(0x4000, 0xc000), opts);
  const device = new DeviceQueue(mem, layout, opts);
  const add = (token: number) => driver.add({ readable: [Uint8Array.of(token)], writable: [2] }, token);
  return { driver, device, add };
}

for (const eventIdx of [false, true])
  test(`kicks suppressed and allowed again (${eventIdx ? 'EVENT_IDX avail_event' : 'used.flags NO_NOTIFY'})`, () => {
    const { driver, device, add } = pair(eventIdx);
    add(1);
    assert.equal(driver.kickNeeded(), true, 'kicks start enabled');
    assert.equal(device.pop()?.head !== undefined, true);

    device.suppressKicks();
    // However many chains the driver adds while we poll, it sends no kick for them...
    for (let t = 2; t < 40; t++) {
      add(t);
      assert.equal(driver.kickNeeded(), false, `chain ${t} kicked while suppressed`);
      const c = device.pop(); // ...the poller finds them itself
      assert.ok(c);
      device.push(c.head, 0);
      driver.collect();
    }
    // The one the driver adds after our last look, before we re-enable: no kick was sent for it,
    // and allowKicks() reports it.
    add(99);
    assert.equal(driver.kickNeeded(), false);
    assert.equal(device.allowKicks(), true, 'a chain added while suppressed is found by the re-check');
    assert.ok(device.pop());
    assert.equal(device.allowKicks(), false, 'nothing pending: the poller may sleep');
    add(100);
    assert.equal(driver.kickNeeded(), true, 'kicks are back on after allowKicks()');
  });
