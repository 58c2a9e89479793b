import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeFd,
  eventfd,
  ioctl,
  isSyscallError,
  readFd,
  sendMsg,
  socketPair,
} from '../../src/native/index.ts';

/** FIONREAD (asm-generic/ioctls.h): bytes waiting to be read, written as an int through the arg. */
const FIONREAD = 0x541b;

describe('ioctl', () => {
  it('passes the buffer to the kernel and returns the result (FIONREAD on a socket)', () => {
    const [a, b] = socketPair();
    try {
      assert.equal(sendMsg(a, new Uint8Array([1, 2, 3, 4, 5])), 5);
      const arg = new Int32Array(1);
      assert.equal(ioctl(b, FIONREAD, arg), 0);
      assert.equal(arg[0], 5);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('throws a SyscallError: ENOTTY for a request the fd does not know, EBADF for a closed fd', () => {
    const fd = eventfd(0);
    // GPIO_GET_CHIPINFO_IOCTL on an eventfd
    assert.throws(
      () => ioctl(fd, 0x8044b401, new Uint8Array(68)),
      (e: unknown) => isSyscallError(e, 'ENOTTY') && e.syscall === 'ioctl',
    );
    closeFd(fd);
    assert.throws(
      () => ioctl(fd, FIONREAD, new Int32Array(1)),
      (e: unknown) => isSyscallError(e, 'EBADF'),
    );
  });

  it('refuses a buffer smaller than the size an _IOC request names', () => {
    const fd = eventfd(0);
    try {
      assert.throws(
        () => ioctl(fd, 0x8044b401, new Uint8Array(67)),
        (e: unknown) => e instanceof RangeError && /_IOC_SIZE\(request\) = 68/.test(e.message),
      );
      assert.throws(() => ioctl(fd, -1, new Uint8Array(4)), RangeError);
      assert.throws(() => ioctl(fd, FIONREAD, [0] as unknown as Uint8Array), TypeError);
    } finally {
      closeFd(fd);
    }
  });
});

describe('readFd', () => {
  it("reads into the caller's buffer, null on EAGAIN, 0 at end of file", () => {
    const [a, b] = socketPair();
    try {
      const buf = new Uint8Array(8);
      assert.equal(readFd(b, buf), null);
      sendMsg(a, new Uint8Array([7, 8, 9]));
      assert.equal(readFd(b, buf.subarray(2)), 3);
      assert.deepEqual([...buf], [0, 0, 7, 8, 9, 0, 0, 0]);
      closeFd(a);
      assert.equal(readFd(b, buf), 0);
      assert.throws(() => readFd(b, new Uint8Array(0)), RangeError);
    } finally {
      closeFd(b);
    }
    assert.throws(
      () => readFd(b, new Uint8Array(1)),
      (e: unknown) => isSyscallError(e, 'EBADF'),
    );
  });
});
