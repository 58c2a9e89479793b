import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  closeFd,
  eventfd,
  fdKind,
  FdPoller,
  monotonicNs,
  timerfdArm,
  timerfdCreate,
  timerfdDisarm,
  timerfdRead,
} from '../../src/native/index.ts';

const MS = 1_000_000n;

function fdinfo(fd: number): string {
  return readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
}

/** Resolves with the expiration count the poller reads (drainEventfd) and the time it came. */
function nextExpiration(fd: number): Promise<{ count: bigint; atNs: bigint }> {
  return new Promise((resolve, reject) => {
    const p = new FdPoller(
      fd,
      (err, readable, _writable, count) => {
        const atNs = process.hrtime.bigint();
        p.close();
        if (err) reject(err);
        else if (!readable || count === undefined) reject(new Error('woke without an expiration'));
        else resolve({ count, atNs });
      },
      { drainEventfd: true },
    );
    p.start(true, false);
  });
}

describe('timerfd', () => {
  it('process.hrtime.bigint() reads CLOCK_MONOTONIC, the timerfd clock', () => {
    for (let i = 0; i < 5; i++) {
      const before = process.hrtime.bigint();
      const mono = monotonicNs();
      const after = process.hrtime.bigint();
      assert.ok(before <= mono && mono <= after, `${before} <= ${mono} <= ${after}`);
    }
  });

  it('is created disarmed, non-blocking and close-on-exec', () => {
    const fd = timerfdCreate();
    try {
      assert.equal(fdKind(fd), 'anon-inode');
      const info = fdinfo(fd);
      assert.match(info, /^clockid:\s+1$/m, 'CLOCK_MONOTONIC is clock id 1');
      const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(info)![1], 8);
      assert.ok(flags & 0o4000, 'O_NONBLOCK');
      assert.ok(flags & 0o2000000, 'O_CLOEXEC');
      assert.equal(timerfdRead(fd), null, 'no expiration yet');
    } finally {
      closeFd(fd);
    }
  });

  it('fires at its absolute deadline, never before it, once', async () => {
    const fd = timerfdCreate();
    try {
      const deadline = process.hrtime.bigint() + 20n * MS;
      timerfdArm(fd, deadline);
      const { count, atNs } = await nextExpiration(fd);
      assert.equal(count, 1n);
      assert.ok(atNs >= deadline, `woke ${deadline - atNs} ns before the deadline`);
      assert.equal(timerfdRead(fd), null, 'the poller read the expiration');
      // One expiration, not periodic: nothing more after another 30 ms.
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(timerfdRead(fd), null);
    } finally {
      closeFd(fd);
    }
  });

  it('a deadline already past expires at once; re-arming replaces the earlier deadline', async () => {
    const fd = timerfdCreate();
    try {
      timerfdArm(fd, 1n);
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(timerfdRead(fd), 1n);
      const later = process.hrtime.bigint() + 10_000n * MS;
      timerfdArm(fd, later);
      const sooner = process.hrtime.bigint() + 10n * MS;
      timerfdArm(fd, sooner);
      const { count, atNs } = await nextExpiration(fd);
      assert.equal(count, 1n);
      assert.ok(atNs >= sooner && atNs < later);
    } finally {
      closeFd(fd);
    }
  });

  it('re-arming or disarming clears an expiration not yet read (the fd is no longer readable)', async () => {
    const fd = timerfdCreate();
    try {
      timerfdArm(fd, 1n);
      await new Promise((r) => setTimeout(r, 5));
      assert.match(fdinfo(fd), /^ticks:\s+1$/m, 'expired once');
      timerfdArm(fd, process.hrtime.bigint() + 10_000n * MS);
      assert.match(fdinfo(fd), /^ticks:\s+0$/m, 're-armed: no expiration pending');
      assert.equal(timerfdRead(fd), null);
      timerfdArm(fd, 1n);
      await new Promise((r) => setTimeout(r, 5));
      timerfdDisarm(fd);
      assert.equal(timerfdRead(fd), null, 'disarmed: no expiration pending');
    } finally {
      closeFd(fd);
    }
  });

  it('disarm: an armed deadline never expires', async () => {
    const fd = timerfdCreate();
    try {
      timerfdArm(fd, process.hrtime.bigint() + 10n * MS);
      timerfdDisarm(fd);
      assert.match(fdinfo(fd), /^it_value:\s+\(0, 0\)$/m, 'the kernel shows it disarmed');
      await new Promise((r) => setTimeout(r, 40));
      assert.equal(timerfdRead(fd), null);
    } finally {
      closeFd(fd);
    }
  });

  it('closeFd releases the descriptor', () => {
    const fd = timerfdCreate();
    timerfdArm(fd, process.hrtime.bigint() + 1000n * MS);
    closeFd(fd);
    assert.equal(fdKind(fd), 'closed');
  });

  it('bad arguments are errors, not crashes', () => {
    const fd = timerfdCreate();
    const other = eventfd(0);
    try {
      assert.throws(() => timerfdArm(fd, 5 as unknown as bigint), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
      assert.throws(() => timerfdArm(fd, 0n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => timerfdArm(fd, -1n), { name: 'RangeError' });
      assert.throws(() => timerfdArm(fd, 2n ** 63n), { name: 'RangeError' });
      assert.throws(() => timerfdArm('x' as unknown as number, 1n), { name: 'TypeError' });
      assert.throws(() => timerfdArm(other, 1n), { code: 'EINVAL', syscall: 'timerfd_settime' });
      assert.throws(() => timerfdDisarm(other), { code: 'EINVAL' });
      assert.throws(() => timerfdRead(other), { code: 'EINVAL', syscall: 'timerfd_gettime' });
      assert.throws(() => timerfdRead(-1), { code: 'EBADF' });
      assert.throws(() => timerfdArm(1_000_000, 1n), { code: 'EBADF' });
    } finally {
      closeFd(fd);
      closeFd(other);
    }
  });
});
