import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  isSyscallError,
  socketPair,
  writeFd,
} from '../../src/native/index.ts';

function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m);
  return parseInt(m[1], 8);
}

describe('eventfd', () => {
  it('accumulates writes and resets on read', () => {
    const fd = eventfd(0);
    try {
      assert.equal(eventfdRead(fd), null, 'counter 0 -> EAGAIN -> null');
      assert.equal(eventfdWrite(fd, 3n), true);
      assert.equal(eventfdWrite(fd, 4n), true);
      assert.equal(eventfdRead(fd), 7n);
      assert.equal(eventfdRead(fd), null);
      assert.equal(eventfdWrite(fd), true, 'default increment is 1n');
      assert.equal(eventfdRead(fd), 1n);
    } finally {
      closeFd(fd);
    }
  });

  it('starts from initval and sets the requested flags', () => {
    const fd = eventfd(5);
    const blocking = eventfd(0, false);
    try {
      assert.equal(eventfdRead(fd), 5n);
      assert.ok(fdFlags(fd) & 0o4000, 'O_NONBLOCK by default');
      assert.ok(fdFlags(fd) & 0o2000000, 'O_CLOEXEC');
      assert.equal(fdFlags(blocking) & 0o4000, 0, 'nonblock=false');
    } finally {
      closeFd(fd);
      closeFd(blocking);
    }
  });

  it('semaphore mode decrements by one per read', () => {
    const fd = eventfd(2, true, true);
    try {
      assert.equal(eventfdRead(fd), 1n);
      assert.equal(eventfdRead(fd), 1n);
      assert.equal(eventfdRead(fd), null);
    } finally {
      closeFd(fd);
    }
  });

  it('returns false when the counter would overflow, and handles 64-bit values', () => {
    const fd = eventfd(0);
    try {
      const max = 0xfffffffffffffffen; // largest storable counter value
      assert.equal(eventfdWrite(fd, max), true);
      assert.equal(eventfdWrite(fd, 1n), false);
      assert.equal(eventfdRead(fd), max);
      assert.throws(
        () => eventfdWrite(fd, 0xffffffffffffffffn),
        (err: unknown) => isSyscallError(err, 'EINVAL') && err.syscall === 'write',
      );
      assert.throws(() => eventfdWrite(fd, -1n), { name: 'RangeError' });
      assert.throws(() => eventfdWrite(fd, 1n << 64n), { name: 'RangeError' });
      assert.throws(() => eventfdWrite(fd, 'x' as unknown as bigint), { name: 'TypeError' });
    } finally {
      closeFd(fd);
    }
  });

  it('reports errors', () => {
    assert.throws(
      () => eventfdRead(-1),
      (err: unknown) => isSyscallError(err, 'EBADF') && err.syscall === 'read',
    );
    assert.throws(() => eventfd(-1), { name: 'RangeError' });
    assert.throws(() => eventfd(0, 'yes' as unknown as boolean), { name: 'TypeError' });
    // A short read from something that is not an eventfd is reported, not misread.
    const [a, b] = socketPair();
    try {
      assert.equal(writeFd(a, Buffer.from([1, 2, 3])), 3);
      assert.throws(
        () => eventfdRead(b),
        (err: unknown) => isSyscallError(err, 'EIO') && err.syscall === 'read',
      );
      // Eight bytes are read as a native-endian u64.
      assert.equal(writeFd(a, Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])), 8);
      assert.equal(eventfdRead(b), 5n);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });
});
