import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeFd,
  eventfd,
  getAffinity,
  getCpu,
  ioctl,
  isSyscallError,
  sendMsg,
  setAffinity,
  socketPair,
} from '../../src/native/index.ts';

const FIONREAD = 0x541b;

describe('ioctl', () => {
  it('FIONREAD reports the queued byte count through the arg buffer', () => {
    const [a, b] = socketPair();
    try {
      const arg = new Uint8Array(4);
      assert.equal(ioctl(b, FIONREAD, arg), 0);
      assert.equal(Buffer.from(arg.buffer).readInt32LE(0), 0);
      assert.equal(sendMsg(a, Buffer.from('12345')), 5);
      arg.fill(0xff);
      assert.equal(ioctl(b, FIONREAD, arg), 0);
      assert.equal(Buffer.from(arg.buffer).readInt32LE(0), 5);
      // A view at an offset is honoured.
      const big = new Uint8Array(12);
      assert.equal(ioctl(b, FIONREAD, big.subarray(8)), 0);
      assert.deepEqual([...big], [0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('throws errno errors and refuses an arg smaller than _IOC_SIZE', () => {
    const fd = eventfd(0);
    try {
      // 0xC100B405 is _IOWR(0xB4, 5, 256 bytes): the size is checked before calling the kernel.
      assert.throws(() => ioctl(fd, 0xc100b405, new Uint8Array(4)), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
      });
      assert.throws(
        () => ioctl(fd, 0xc100b405, new Uint8Array(256)),
        (err: unknown) => isSyscallError(err, 'ENOTTY') && err.syscall === 'ioctl',
      );
      assert.throws(
        () => ioctl(-1, FIONREAD, new Uint8Array(4)),
        (err: unknown) => isSyscallError(err, 'EBADF'),
      );
      assert.throws(() => ioctl(fd, 2 ** 32, new Uint8Array(4)), { name: 'RangeError' });
    } finally {
      closeFd(fd);
    }
  });
});

describe('CPU placement', () => {
  it('getCpu is within getAffinity', () => {
    const cpus = getAffinity();
    assert.ok(cpus.length > 0);
    assert.deepEqual(
      cpus,
      [...cpus].sort((x, y) => x - y),
    );
    assert.ok(cpus.includes(getCpu()));
  });

  it('setAffinity pins the calling thread', () => {
    const original = getAffinity();
    const target = original[original.length - 1];
    try {
      setAffinity([target]);
      assert.deepEqual(getAffinity(), [target]);
      assert.equal(getCpu(), target);
    } finally {
      setAffinity(original);
    }
    assert.deepEqual(getAffinity(), original);
    assert.throws(
      () => setAffinity([]),
      (err: unknown) => isSyscallError(err, 'EINVAL') && err.syscall === 'sched_setaffinity',
    );
    assert.throws(() => setAffinity([4096]), { name: 'RangeError' });
    assert.throws(() => setAffinity('0' as unknown as number[]), { name: 'TypeError' });
  });
});
