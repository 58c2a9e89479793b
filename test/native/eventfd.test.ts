import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  addonPath,
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  fdKind,
  isEventfd,
  isSyscallError,
  memfdCreate,
  sendMsg,
  socketPair,
  type FdKind,
} from '../../src/native/index.ts';

const nativeModule = fileURLToPath(new URL('../../src/native/index.ts', import.meta.url));

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
      assert.equal(sendMsg(a, Buffer.from([1, 2, 3])), 3);
      assert.throws(
        () => eventfdRead(b),
        (err: unknown) => isSyscallError(err, 'EIO') && err.syscall === 'read',
      );
      // Eight bytes are read as a native-endian u64.
      assert.equal(sendMsg(a, Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])), 8);
      assert.equal(eventfdRead(b), 5n);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });
});

describe('fdKind / isEventfd', () => {
  it('accepts an eventfd and refuses every other kind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-fdkind-'));
    const efd = eventfd(0);
    const [a, b] = socketPair();
    const mfd = memfdCreate('fdkind', 4096);
    const file = openSync(join(dir, 'regular'), 'w');
    const folder = openSync(dir, 'r');
    try {
      assert.equal(fdKind(efd), 'eventfd');
      assert.equal(isEventfd(efd), true);
      const others: [number, FdKind][] = [
        [a, 'socket'],
        [b, 'socket'],
        [mfd, 'memfd'],
        [file, 'path'],
        [folder, 'path'],
      ];
      for (const [fd, kind] of others) {
        assert.equal(fdKind(fd), kind, `fd ${fd}`);
        assert.equal(isEventfd(fd), false, `fd ${fd} (${kind})`);
      }
    } finally {
      [efd, a, b, mfd].forEach(closeFd);
      closeSync(file);
      closeSync(folder);
      rmSync(dir, { recursive: true, force: true });
    }
    const closed = eventfd(0);
    closeFd(closed);
    assert.equal(fdKind(closed), 'closed');
    assert.equal(isEventfd(closed), false);
  });

  it('refuses an anonymous pipe (a shell pipes into a child that asks)', () => {
    // Node has no pipe(2) of its own; `:` | child gives the child a real pipe on fd 0.
    const script = `import { fdKind, isEventfd } from ${JSON.stringify(nativeModule)};
      process.stdout.write(JSON.stringify([fdKind(0), isEventfd(0)]));`;
    const out = execFileSync(
      'sh',
      ['-c', ': | exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script],
      { encoding: 'utf8' },
    );
    assert.deepEqual(JSON.parse(out), ['pipe', false]);
  });
});

describe('eventfd I/O never blocks', () => {
  const elapsedMs = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;

  it('an empty blocking eventfd: read returns null at once', () => {
    const fd = eventfd(0, false);
    try {
      assert.equal(fdFlags(fd) & 0o4000, 0, 'blocking');
      const t = process.hrtime.bigint();
      for (let i = 0; i < 100; i++) assert.equal(eventfdRead(fd), null);
      assert.ok(elapsedMs(t) < 50, `100 reads took ${elapsedMs(t)} ms`);
    } finally {
      closeFd(fd);
    }
  });

  it('a blocking eventfd saturated at 2^64-2: write returns false at once', () => {
    const fd = eventfd(0, false);
    try {
      assert.equal(eventfdWrite(fd, 0xfffffffffffffffen), true);
      const t = process.hrtime.bigint();
      for (let i = 0; i < 100; i++) assert.equal(eventfdWrite(fd, 1n), false);
      assert.ok(elapsedMs(t) < 50, `100 writes took ${elapsedMs(t)} ms`);
      assert.equal(eventfdRead(fd), 0xfffffffffffffffen, 'the refused writes added nothing');
    } finally {
      closeFd(fd);
    }
  });

  it('a write that the kernel puts to sleep is interrupted by the guard and reports false', () => {
    // Counter 1: poll says writable (a write of 1 would fit), but 2^64-2 more does not, so a plain
    // write(2) on this blocking fd would sleep until someone reads. The guard timer (5 ms) ends it.
    const fd = eventfd(1, false);
    try {
      const t = process.hrtime.bigint();
      assert.equal(eventfdWrite(fd, 0xfffffffffffffffen), false);
      const ms = elapsedMs(t);
      assert.ok(ms >= 4, `returned after ${ms} ms: the write did not sleep, the test proves nothing`);
      assert.ok(ms < 100, `returned after ${ms} ms`);
      assert.equal(eventfdRead(fd), 1n, 'the counter is unchanged');
      // The guard is disarmed: the thread goes on without stray EINTRs.
      assert.equal(eventfdWrite(fd, 2n), true);
      assert.equal(eventfdRead(fd), 2n);
    } finally {
      closeFd(fd);
    }
  });

  it('the guard works on a worker thread too (its own timer), and the worker exits cleanly', async () => {
    const worker = new Worker(
      `const n = require(${JSON.stringify(addonPath)});
      const { parentPort } = require('node:worker_threads');
      const fd = n.eventfd(1, false, false);
      const t = process.hrtime.bigint();
      const ok = n.eventfdWrite(fd, 0xfffffffffffffffen);
      parentPort.postMessage({ ok, ms: Number(process.hrtime.bigint() - t) / 1e6, value: n.eventfdRead(fd) });
      n.closeFd(fd);`,
      { eval: true },
    );
    const [msg] = (await once(worker, 'message')) as [{ ok: boolean; ms: number; value: bigint }];
    const [code] = (await once(worker, 'exit')) as [number];
    assert.equal(msg.ok, false);
    assert.ok(msg.ms >= 4 && msg.ms < 100, `${msg.ms} ms`);
    assert.equal(msg.value, 1n);
    assert.equal(code, 0);
    // The main thread's guard is unaffected.
    const fd = eventfd(1, false);
    try {
      assert.equal(eventfdWrite(fd, 0xfffffffffffffffen), false);
      assert.equal(eventfdWrite(fd, 1n), true);
    } finally {
      closeFd(fd);
    }
  });

  it('a peer flipping O_NONBLOCK and refilling the counter cannot make it block', async () => {
    // The child shares the open file description (fd 3): its fcntl(F_SETFL) flips our flag too.
    // Each cycle it flips the flag in a tight loop, then leaves the fd blocking with the counter at
    // 2^64-3 for 600 ms: poll says writable (1 more fits) but our write of 2 would sleep, so an
    // unguarded write would hang until the child drains, ~600 ms for the first write of a hold.
    const fd = eventfd(0, true);
    const script = `import { setNonBlocking, eventfdRead, eventfdWrite } from ${JSON.stringify(nativeModule)};
      const nap = new Int32Array(new SharedArrayBuffer(4));
      process.stdin.on('end', () => process.exit(0)).resume();
      process.stdout.write('go\\n');
      const end = Date.now() + 20000;
      const cycle = () => {
        for (let i = 0; i < 2000; i++) setNonBlocking(3, (i & 1) === 1);
        eventfdRead(3);
        setNonBlocking(3, false);
        eventfdWrite(3, 0xfffffffffffffffdn);
        Atomics.wait(nap, 0, 0, 600);
        eventfdRead(3);
        if (Date.now() < end) setImmediate(cycle); else process.exit(0);
      };
      cycle();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit', fd],
    });
    const { stdin, stdout } = child;
    assert.ok(stdin && stdout);
    try {
      await new Promise<void>((resolve, reject) => {
        stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      let worstMs = 0;
      let refused = 0;
      let accepted = 0;
      const t = process.hrtime.bigint();
      const nap = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 1000 && elapsedMs(t) < 2500; i++) {
        const one = process.hrtime.bigint();
        if (eventfdWrite(fd, 2n)) accepted++;
        else refused++;
        worstMs = Math.max(worstMs, elapsedMs(one));
        Atomics.wait(nap, 0, 0, 1); // let the child run between writes
      }
      // Guarded, a write returns within 5-10 ms (plus whatever the machine's load adds); an
      // unguarded one would sleep through the rest of a 600 ms hold.
      assert.ok(worstMs < 300, `one write took ${worstMs} ms (${refused} refused, ${accepted} accepted)`);
      assert.ok(refused > 0, 'the peer never held the counter full: the test proved nothing');
      assert.ok(accepted > 0, 'no write got through between the holds');
    } finally {
      stdin.end();
      await new Promise((resolve) => child.once('close', resolve));
      closeFd(fd);
    }
  });
});
