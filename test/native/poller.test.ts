import { describe, it } from 'node:test';
import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  addonPath,
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  FdPoller,
  isSyscallError,
  sendMsg,
  socketPair,
} from '../../src/native/index.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await tick();
  }
}

type Event = { err: Error | null; readable: boolean; writable: boolean };

/** Resolves on the next callback of a poller created with `recorder.callback`. */
function recorder() {
  const events: Event[] = [];
  let waiter: ((e: Event) => void) | undefined;
  return {
    events,
    callback: (err: Error | null, readable: boolean, writable: boolean) => {
      const e = { err, readable, writable };
      events.push(e);
      const w = waiter;
      waiter = undefined;
      w?.(e);
    },
    next: (timeoutMs = 5000): Promise<Event> =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('poller callback did not fire')), timeoutMs);
        waiter = (e) => {
          clearTimeout(t);
          resolve(e);
        };
      }),
  };
}

interface Child {
  child: ChildProcess;
  output: () => string;
  waitFor: (text: string, timeoutMs?: number) => Promise<void>;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/**
 * Runs a CommonJS script with the addon bound to `n` (unless `loadAddon` is false); `fd` (if
 * given) becomes the child's fd 3.
 */
function runChild(body: string, fd?: number, loadAddon = true): Child {
  const preamble = loadAddon ? `const n = require(${JSON.stringify(addonPath)});` : '';
  const script = `'use strict';\n${preamble}\n${body}`;
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['-e', script], {
    stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', fd],
    env,
  });
  let out = '';
  const listeners: (() => void)[] = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    listeners.forEach((l) => l());
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  // 'close' (not 'exit'): fires only after stdout/stderr have been fully read.
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    output: () => out,
    exited,
    waitFor: (text, timeoutMs = 10000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (out.includes(text)) {
            clearTimeout(t);
            resolve();
          }
        };
        const t = setTimeout(
          () => reject(new Error(`child never printed ${text}; output: ${out}`)),
          timeoutMs,
        );
        listeners.push(check);
        check();
      }),
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

describe('FdPoller', () => {
  it('fires readable when an eventfd is written from a timer, and stop() stops callbacks', async () => {
    const fd = eventfd(0);
    const rec = recorder();
    const p = new FdPoller(fd, rec.callback);
    try {
      assert.equal(p.callback, rec.callback);
      p.start();
      await sleep(20);
      assert.equal(rec.events.length, 0, 'no event before the write');
      setTimeout(() => eventfdWrite(fd, 3n), 10);
      const e = await rec.next();
      assert.deepEqual(e, { err: null, readable: true, writable: false });
      assert.equal(eventfdRead(fd), 3n); // drain

      p.stop();
      eventfdWrite(fd, 1n);
      await sleep(50);
      assert.equal(rec.events.length, 1, 'no callback while stopped');

      p.start(); // still readable (level-triggered): fires again
      await rec.next();
      assert.equal(eventfdRead(fd), 1n);
    } finally {
      p.close();
      closeFd(fd);
    }
  });

  it('fires when a child process writes the eventfd (passed as its fd 3)', async () => {
    const fd = eventfd(0);
    const rec = recorder();
    const p = new FdPoller(fd, rec.callback);
    try {
      p.start();
      const child = runChild('n.eventfdWrite(3, 41n); n.eventfdWrite(3, 1n);', fd);
      const e = await rec.next(10000);
      assert.equal(e.readable, true);
      const [code] = await child.exited;
      assert.equal(code, 0, child.output());
      assert.equal(eventfdRead(fd), 42n);
    } finally {
      p.close();
      closeFd(fd);
    }
  });

  it('is level-triggered: fires on every loop iteration until drained', async () => {
    const fd = eventfd(1);
    let calls = 0;
    const p = new FdPoller(fd, () => {
      calls++;
      if (calls === 3) eventfdRead(fd); // drain on the third call
    });
    try {
      p.start();
      for (let i = 0; i < 20 && calls < 3; i++) await sleep(5);
      assert.equal(calls, 3);
      await sleep(50);
      assert.equal(calls, 3, 'no callbacks once drained');
    } finally {
      p.close();
      closeFd(fd);
    }
  });

  it('reports writability and can switch events', async () => {
    const [a, b] = socketPair();
    const rec = recorder();
    const p = new FdPoller(a, rec.callback);
    try {
      p.start(false, true);
      const e = await rec.next();
      assert.deepEqual(e, { err: null, readable: false, writable: true });
      p.start(true, false); // modify: now only readable, nothing queued
      const before = rec.events.length;
      await sleep(30);
      assert.equal(rec.events.length, before);
      p.start(false, false); // same as stop
      await sleep(20);
      assert.equal(rec.events.length, before);
    } finally {
      p.close();
      closeFd(a);
      closeFd(b);
    }
  });

  it('close() is idempotent, prevents further callbacks, and start() then throws', async () => {
    const fd = eventfd(1);
    let calls = 0;
    const p = new FdPoller(fd, () => {
      calls++;
      p.close(); // close from inside the callback
      p.close();
    });
    try {
      p.start();
      for (let i = 0; i < 100 && calls === 0; i++) await sleep(5);
      assert.equal(calls, 1);
      await sleep(30);
      assert.equal(calls, 1, 'no callback after close (fd still readable)');
      p.close();
      p.stop();
      p.ref();
      p.unref();
      assert.throws(() => p.start(), { code: 'ERR_POLLER_CLOSED' });

      const q = new FdPoller(fd, () => calls++);
      q.start();
      q.close(); // close before the loop ever polls
      q.close();
      await sleep(30);
      assert.equal(calls, 1);
    } finally {
      closeFd(fd);
    }
  });

  it('calls back through napi_make_callback: async context, then nextTick/microtasks drained', async () => {
    const fd = eventfd(1);
    const als = new AsyncLocalStorage<string>();
    const order: string[] = [];
    let store: string | undefined;
    let asyncId = -1;
    const done = new Promise<void>((resolve) => {
      // Constructed inside als.run(): the poller's async resource inherits the store.
      const p: FdPoller = als.run(
        'poller-context',
        () =>
          new FdPoller(fd, () => {
            p.close();
            store = als.getStore();
            asyncId = executionAsyncId();
            order.push('callback');
            process.nextTick(() => order.push('tick'));
            void Promise.resolve().then(() => order.push('microtask'));
            setImmediate(() => {
              order.push('immediate');
              resolve();
            });
          }),
      );
      p.start(); // outside als.run()
    });
    try {
      await withTimeout(done, 5000, 'poller callback');
      assert.equal(store, 'poller-context');
      assert.ok(asyncId > 0, 'the callback runs in its own async context');
      assert.deepEqual(order, ['callback', 'tick', 'microtask', 'immediate']);
    } finally {
      closeFd(fd);
    }
  });

  it('validates arguments and receivers', () => {
    const fd = eventfd(0);
    try {
      assert.throws(() => new FdPoller(fd, 'x' as unknown as () => void), { name: 'TypeError' });
      assert.throws(() => (FdPoller as unknown as (fd: number, cb: () => void) => void)(fd, () => {}), {
        name: 'TypeError',
      });
      const p = new FdPoller(fd, () => {});
      // V8's receiver check (or the addon's type tag check) rejects foreign receivers.
      assert.throws(() => p.start.call({}), { name: 'TypeError' });
      assert.throws(() => p.start('yes' as unknown as boolean), { name: 'TypeError' });
      // libuv allows one poll handle per descriptor.
      p.start();
      assert.throws(
        () => new FdPoller(fd, () => {}),
        (err: unknown) => isSyscallError(err, 'EEXIST') && err.syscall === 'uv_poll_init',
      );
      p.close();
      assert.throws(
        () => new FdPoller(-1, () => {}),
        (err: unknown) => isSyscallError(err, 'EBADF'),
      );
      // Regular files cannot be polled (epoll refuses them).
      const file = openSync(addonPath, 'r');
      try {
        assert.throws(
          () => new FdPoller(file, () => {}),
          (err: unknown) => isSyscallError(err, 'EPERM'),
        );
      } finally {
        closeSync(file);
      }
      // closeFd refuses to close a descriptor a started poller watches.
      const watched = eventfd(0);
      const w = new FdPoller(watched, () => {});
      w.start();
      assert.throws(
        () => closeFd(watched),
        (err: unknown) => isSyscallError(err, 'EBUSY') && err.syscall === 'close',
      );
      w.stop();
      closeFd(watched); // fine once stopped
      w.close();
      // start() on a descriptor that was closed under the poller throws instead of aborting.
      const fd2 = eventfd(0);
      const q = new FdPoller(fd2, () => {});
      closeFd(fd2);
      assert.throws(
        () => q.start(),
        (err: unknown) => isSyscallError(err, 'EBADF'),
      );
      q.close();
    } finally {
      closeFd(fd);
    }
  });

  it('keeps a started poller alive, and lets stopped or closed pollers be collected', async () => {
    const fds = [eventfd(0), eventfd(0), eventfd(0)];
    // Separate functions, so that each callback's closure context holds only its own poller
    // (a closure shared with the started poller would keep the others alive).
    const makeStarted = (): WeakRef<FdPoller> => {
      const a: FdPoller = new FdPoller(fds[0], () => a.stop());
      a.start();
      a.unref();
      return new WeakRef(a);
    };
    const makeStopped = (): WeakRef<FdPoller> => {
      const b: FdPoller = new FdPoller(fds[1], () => b.stop());
      b.start();
      b.stop();
      return new WeakRef(b);
    };
    const makeClosed = (): WeakRef<FdPoller> => {
      const c: FdPoller = new FdPoller(fds[2], () => c.close());
      c.start();
      c.close();
      return new WeakRef(c);
    };
    const started = makeStarted();
    const stopped = makeStopped();
    const closed = makeClosed();
    await collect();
    try {
      assert.notEqual(started.deref(), undefined, 'a started poller must not be collected');
      assert.equal(stopped.deref(), undefined, 'a stopped poller is collectable');
      assert.equal(closed.deref(), undefined, 'a closed poller is collectable');
      // The started one still works: its callback stops it, after which its fd may be closed.
      assert.throws(
        () => closeFd(fds[0]),
        (err: unknown) => isSyscallError(err, 'EBUSY'),
      );
      eventfdWrite(fds[0], 1n);
      for (let i = 0; i < 100; i++) {
        await sleep(5);
        try {
          closeFd(fds[0]);
          fds[0] = -1;
          break;
        } catch (err) {
          if (!isSyscallError(err, 'EBUSY')) throw err;
        }
      }
      assert.equal(fds[0], -1, 'callback of the started poller never ran');
    } finally {
      started.deref()?.close();
      await collect(); // the finalizer of the collected pollers closes their handles
      fds.filter((fd) => fd >= 0).forEach(closeFd);
    }
  });

  it(
    'unref() lets the process exit; a ref()ed started poller keeps it alive',
    { timeout: 30000 },
    async () => {
      const body = (unref: boolean) => `
      const p = new n.FdPoller(3, (err, readable) => {
        console.log('fired ' + readable + ' ' + n.eventfdRead(3));
        p.close();
      });
      p.start();
      ${unref ? 'p.unref();' : 'p.unref(); p.ref();'}
      console.log('ready');`;

      const fd = eventfd(0);
      try {
        // ref'd: the child waits for us.
        const kept = runChild(body(false), fd);
        await kept.waitFor('ready');
        await sleep(300);
        assert.equal(kept.child.exitCode, null, 'child must still be running');
        eventfdWrite(fd, 2n);
        const [code] = await withTimeout(kept.exited, 10000, 'child exit');
        assert.equal(code, 0, kept.output());
        assert.match(kept.output(), /fired true 2\n/);

        // unref'd: the child exits on its own without an event.
        const gone = runChild(body(true), fd);
        const [code2] = await withTimeout(gone.exited, 10000, 'unref child exit');
        assert.equal(code2, 0, gone.output());
        assert.match(gone.output(), /ready/);
        assert.doesNotMatch(gone.output(), /fired/);
      } finally {
        closeFd(fd);
      }
    },
  );

  it('closes pollers left open when a worker thread exits or is terminated', { timeout: 60000 }, async () => {
    // Node unloads the addon after a worker's environment is torn down; a uv handle still
    // closing at that point would call into unmapped code (SIGSEGV). Run it in a child process
    // so that a crash is reported as a failure rather than killing the test runner. The child's
    // main thread must not load the addon itself (that would keep the library mapped).
    const workerCode = `
      const n = require(${JSON.stringify(addonPath)});
      const { parentPort, workerData } = require('node:worker_threads');
      const fd = n.eventfd(0);
      const started = new n.FdPoller(fd, () => n.eventfdRead(fd));
      started.start();
      if (workerData === 'unref') started.unref();
      const stopped = new n.FdPoller(n.eventfd(0), () => {});
      const closing = new n.FdPoller(n.eventfd(1), () => {});
      closing.start();
      closing.close();
      const timer = setInterval(() => n.eventfdWrite(fd), 1);
      if (workerData === 'unref') timer.unref();
      parentPort.postMessage('ready');
      if (workerData === 'exit') process.exit(0);`;
    const child = runChild(
      `
      const { Worker } = require('node:worker_threads');
      (async () => {
        for (const mode of ['unref', 'exit', 'terminate']) {
          for (let i = 0; i < 5; i++) {
            const w = new Worker(${JSON.stringify(workerCode)}, { eval: true, workerData: mode });
            const exited = new Promise((resolve, reject) => { w.on('exit', resolve); w.on('error', reject); });
            if (mode === 'terminate') {
              await new Promise((resolve) => w.once('message', resolve));
              await new Promise((resolve) => setTimeout(resolve, 5));
              await w.terminate();
            }
            await exited;
          }
        }
        console.log('workers ok');
      })();`,
      undefined,
      false,
    );
    const [code, signal] = await withTimeout(child.exited, 50000, 'worker child');
    assert.equal(signal, null, child.output());
    assert.equal(code, 0, child.output());
    assert.match(child.output(), /workers ok/);
  });

  it('routes an exception thrown by the callback to uncaughtException', { timeout: 30000 }, async () => {
    const child = runChild(`
      const fd = n.eventfd(1);
      const p = new n.FdPoller(fd, () => { p.close(); throw new Error('boom'); });
      process.on('uncaughtException', (err) => {
        console.log('uncaught ' + err.message);
        // The addon is still usable afterwards (no stale pending exception).
        setImmediate(() => console.log('after ' + n.eventfdRead(fd)));
      });
      p.start();`);
    const [code] = await withTimeout(child.exited, 10000, 'child exit');
    assert.equal(code, 0, child.output());
    assert.equal(child.output(), 'uncaught boom\nafter 1\n');

    const crash = runChild(`
      const p = new n.FdPoller(n.eventfd(1), () => { throw new Error('unhandled boom'); });
      p.start();`);
    const [code2] = await withTimeout(crash.exited, 10000, 'crashing child exit');
    assert.notEqual(code2, 0);
    assert.match(crash.output(), /unhandled boom/);
  });
});

describe('FdPoller with drainEventfd', () => {
  it('reads the counter before calling back, and passes the count', async () => {
    const fd = eventfd(0);
    const counts: (bigint | undefined)[] = [];
    let wake: (() => void) | undefined;
    const p = new FdPoller(
      fd,
      (err, readable, writable, count) => {
        assert.equal(err, null);
        assert.equal(readable, true);
        assert.equal(writable, false);
        counts.push(count);
        wake?.();
      },
      { drainEventfd: true },
    );
    try {
      p.start();
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(() => eventfdWrite(fd, 3n), 5);
      });
      assert.deepEqual(counts, [3n]);
      assert.equal(eventfdRead(fd), null, 'the addon already read (and so reset) the counter');
      await sleep(30);
      assert.deepEqual(counts, [3n], 'drained: level-triggered polling does not fire again');
      eventfdWrite(fd, 1n);
      eventfdWrite(fd, 1n);
      for (let i = 0; i < 200 && counts.length < 2; i++) await sleep(5);
      assert.deepEqual(counts, [3n, 2n]);
    } finally {
      p.close();
      closeFd(fd);
    }
  });

  it('a semaphore eventfd is read one unit per wake-up until empty', async () => {
    const fd = eventfd(3, true, true);
    const counts: (bigint | undefined)[] = [];
    const p = new FdPoller(fd, (_err, _r, _w, count) => counts.push(count), { drainEventfd: true });
    try {
      p.start();
      for (let i = 0; i < 200 && counts.length < 3; i++) await sleep(5);
      await sleep(30);
      assert.deepEqual(counts, [1n, 1n, 1n]);
    } finally {
      p.close();
      closeFd(fd);
    }
  });

  it('something that is not an eventfd: one error callback, and the poller stops', async () => {
    const [a, b] = socketPair();
    const rec = recorder();
    const p = new FdPoller(b, rec.callback, { drainEventfd: true });
    try {
      p.start();
      assert.equal(sendMsg(a, Buffer.from([1, 2, 3])), 3); // a short read: not an eventfd
      const e = await rec.next();
      assert.ok(isSyscallError(e.err, 'EIO'), String(e.err));
      assert.equal(e.readable, false);
      await sleep(30);
      assert.equal(rec.events.length, 1, 'stopped: still readable, yet no second callback');
      closeFd(b); // a stopped poller no longer holds the fd
    } finally {
      p.close();
      closeFd(a);
    }
  });

  it('validates its options', () => {
    const fd = eventfd(0);
    try {
      assert.throws(() => new FdPoller(fd, () => {}, 'x' as unknown as { drainEventfd: boolean }), {
        name: 'TypeError',
      });
      assert.throws(() => new FdPoller(fd, () => {}, { drainEventfd: 'yes' as unknown as boolean }), {
        name: 'TypeError',
      });
      new FdPoller(fd, () => {}, {}).close();
    } finally {
      closeFd(fd);
    }
  });
});
