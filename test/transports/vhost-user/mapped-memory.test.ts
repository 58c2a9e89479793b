// MappedMemory.faulted(): a region whose file shrinks under the mapping is noticed after the touch
// (the native guard survives the SIGBUS), by that memory only; sealed memfds cannot shrink at all.
import assert from 'node:assert/strict';
import { ftruncateSync } from 'node:fs';
import { describe, test } from 'node:test';
import { closeFd, memfdCreate } from '../../../src/native/index.ts';
import { MappedMemory } from '../../../src/transports/vhost-user/mapped-memory.ts';

const SIZE = 1 << 16;
const region = (gpa: number) => ({
  guestPhysAddr: BigInt(gpa),
  memorySize: BigInt(SIZE),
  userspaceAddr: 0x7f00_0000_0000n + BigInt(gpa),
  mmapOffset: 0n,
});

describe('MappedMemory and shrinking files', () => {
  test('a truncated region reads zeros after the touch and only its memory reports faulted', () => {
    const fdA = memfdCreate('a', SIZE);
    const fdB = memfdCreate('b', SIZE);
    const a = MappedMemory.map([region(0x1000_0000)], [fdA]);
    const b = MappedMemory.map([region(0x2000_0000)], [fdB]);
    try {
      a.guest.write(0x1000_0000 + 8192, Uint8Array.of(7));
      assert.deepEqual([a.faulted(), b.faulted()], [false, false]);
      ftruncateSync(fdA, 0);
      assert.equal(a.guest.read(0x1000_0000 + 8192, 1)[0], 0); // survived, zero page
      assert.deepEqual([a.faulted(), b.faulted()], [true, false]);
      b.guest.write(0x2000_0000, Uint8Array.of(1));
      assert.equal(b.guest.read(0x2000_0000, 1)[0], 1);
    } finally {
      a.unmap();
      b.unmap();
      closeFd(fdA);
      closeFd(fdB);
    }
  });

  test('a memfd sealed against shrinking cannot be truncated: its region never faults', () => {
    const fd = memfdCreate('sealed', SIZE, ['shrink', 'grow']);
    const m = MappedMemory.map([region(0x1000_0000)], [fd]);
    try {
      assert.throws(() => ftruncateSync(fd, 0), { code: 'EPERM' });
      m.guest.write(0x1000_0000, Uint8Array.of(3));
      assert.equal(m.faulted(), false);
    } finally {
      m.unmap();
      closeFd(fd);
    }
  });
});
