// Board time: absolute deadlines in a min-heap behind one wake source, Node timers or the timerfd.
// Every test runs on both sources. Bounds are on order, counts and earliness (a source never runs a
// callback more than its earlyNs before the deadline); lateness is never bounded below seconds,
// since a loaded machine can be late by any amount.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BoardScheduler } from '../../src/board/board-scheduler.ts';
import { nodeBoardTimer, type BoardTimerFactory } from '../../src/board/board-timer.ts';
import { timerfdBoardTimer } from '../../src/board/board-timerfd.ts';

const sources: Array<[string, BoardTimerFactory]> = [
  ['node', nodeBoardTimer],
  ['timerfd', timerfdBoardTimer((m) => assert.fail(m))],
];

/** Waits until `done()` holds: a loaded machine may be late by any amount, so only a minute fails. */
async function until(done: () => boolean, what: string): Promise<void> {
  const limit = Date.now() + 60_000;
  while (!done()) {
    if (Date.now() > limit) assert.fail(`still waiting after 60 s for ${what}`);
    await sleep(5);
  }
}

const busyWait = (ns: bigint) => {
  const until = process.hrtime.bigint() + ns;
  while (process.hrtime.bigint() < until);
};

for (const [kind, timer] of sources) {
  describe(`board scheduler on ${kind}`, () => {
    const scheduler = (onError?: (e: unknown) => void) => new BoardScheduler(onError, timer);

    test('uses the source it was given', () => {
      const s = scheduler();
      assert.equal(s.timerKind, kind);
      assert.ok(s.earlyNs > 0n && s.earlyNs <= 500_000n, `earlyNs ${s.earlyNs}`);
      s.close();
    });

    test('callbacks run in deadline order, ties in the order scheduled; cancelled ones never run', async () => {
      const s = scheduler();
      const now = process.hrtime.bigint();
      const ran: string[] = [];
      // c is far enough after b2 (b2's after() counts from a later "now") that only a 0.5 s stall
      // between these lines could swap them.
      s.at(now + 500_000_000n, () => ran.push('c'));
      s.at(now + 1_000_000n, () => ran.push('a1'));
      s.at(now + 1_000_000n, () => ran.push('a2'));
      s.at(now + 2_000_000n, () => ran.push('b')).cancel();
      s.after(2, () => ran.push('b2'));
      await until(() => ran.length >= 4, 'four callbacks');
      await sleep(5);
      assert.deepEqual(ran, ['a1', 'a2', 'b2', 'c']);
      assert.equal(s.pending, 0);
      s.close();
    });

    test('nothing runs earlier than the source allows before its deadline', async () => {
      const s = scheduler();
      const early: number[] = [];
      // Deadlines 50 µs apart: finer than the timerfd's earliness and far finer than Node's 1 ms.
      for (let i = 0; i < 200; i++) {
        const deadline = process.hrtime.bigint() + BigInt(i * 50_000);
        s.at(deadline, () => early.push(Number(deadline - process.hrtime.bigint())));
      }
      await until(() => early.length === 200, '200 callbacks');
      for (const e of early) assert.ok(e <= Number(s.earlyNs), `ran ${e} ns early (allowed ${s.earlyNs})`);
      s.close();
    });

    test('every: run k stands for start + k·period; a run a whole period late skips what it missed', async () => {
      const s = scheduler();
      const start = process.hrtime.bigint();
      const P = 5_000_000n;
      const runs: Array<{ k: number; atNs: bigint; endNs: bigint }> = [];
      const t = s.every(
        5,
        (k) => {
          const atNs = process.hrtime.bigint();
          // Block the loop for 3.5 periods once: the deadlines it covers are skipped, not burst.
          if (runs.length === 0) busyWait(17_500_000n);
          runs.push({ k, atNs, endNs: process.hrtime.bigint() });
        },
        start,
      );
      await until(() => runs.length >= 6, 'six runs');
      t.cancel();
      const ks = runs.map((r) => r.k);
      const deadline = (k: number) => start + BigInt(k) * P;
      for (let i = 1; i < ks.length; i++) assert.ok(ks[i] > ks[i - 1], `indices grow: ${ks.join(',')}`);
      // Never early: a run comes at most earlyNs before the deadline it stands for.
      for (const r of runs) assert.ok(r.atNs >= deadline(r.k) - s.earlyNs, `run ${r.k} early`);
      // No burst: after a run ends, at most one run (the late one) stands for a deadline already past.
      for (let i = 0; i + 2 < runs.length; i++)
        assert.ok(deadline(ks[i + 2]) >= runs[i].endNs, `runs after ${ks[i]} burst: ${ks.join(',')}`);
      // The stall made the scheduler skip deadlines rather than run each one.
      assert.ok(ks.at(-1)! - ks[0] + 1 > ks.length, `nothing skipped: ${ks.join(',')}`);
      const n = runs.length;
      await sleep(15);
      assert.equal(runs.length, n, 'cancelled');
      s.close();
    });

    test('every: a sub-millisecond period keeps its deadlines by index, none run twice', async () => {
      const s = scheduler();
      const start = process.hrtime.bigint();
      const ks: number[] = [];
      const t = s.every(0.25, (k) => ks.push(k), start);
      await until(() => ks.length > 5, 'six runs');
      await sleep(20);
      t.cancel();
      const elapsedPeriods = Number(process.hrtime.bigint() - start) / 250_000;
      for (let i = 1; i < ks.length; i++) assert.ok(ks[i] > ks[i - 1], 'indices only grow');
      assert.ok(ks.at(-1)! <= elapsedPeriods + 1, `index ${ks.at(-1)} after ${elapsedPeriods} periods`);
      s.close();
    });

    test('a zero-delay loop takes one step per turn: the event loop keeps turning', async () => {
      const s = scheduler();
      let steps = 0;
      let immediates = 0;
      const loop = () => {
        steps++;
        s.at(process.hrtime.bigint(), loop);
      };
      let spin = true;
      const tick = () => {
        immediates++;
        if (spin) setImmediate(tick);
      };
      setImmediate(tick);
      const t0 = process.hrtime.bigint();
      s.at(t0, loop);
      await until(() => steps > 3, 'four steps');
      await sleep(10);
      spin = false;
      const elapsed = process.hrtime.bigint() - t0;
      s.close();
      const turns = Number(elapsed / (kind === 'node' ? 1_000_000n : 100_000n));
      assert.ok(steps <= turns + 2, `${steps} steps in ${turns} turns`);
      assert.ok(immediates > 1, 'other callbacks ran in between');
      const after = steps;
      await sleep(10);
      assert.equal(steps, after, 'closed: nothing runs');
    });

    test('a throwing callback is reported; the others still run', async () => {
      const errors: unknown[] = [];
      const s = scheduler((e) => errors.push(e));
      const ran: number[] = [];
      s.after(1, () => {
        throw new Error('boom');
      });
      s.after(1, () => ran.push(1));
      await until(() => ran.length === 1, 'the second callback');
      assert.deepEqual(ran, [1]);
      assert.equal((errors[0] as Error).message, 'boom');
      s.close();
    });
  });
}

describe('board scheduler on the timerfd: its descriptor and the event loop', () => {
  const openFds = () => readdirSync('/proc/self/fd').length;

  test('close() releases the timerfd', () => {
    const before = openFds();
    const s = new BoardScheduler(undefined, timerfdBoardTimer());
    assert.equal(openFds(), before + 1);
    s.after(1000, () => {});
    s.close();
    assert.equal(openFds(), before);
  });

  test('a pending deadline keeps a process alive, nothing pending lets it exit', async () => {
    const module = fileURLToPath(new URL('../../src/board/board-scheduler.ts', import.meta.url));
    const timerfd = fileURLToPath(new URL('../../src/board/board-timerfd.ts', import.meta.url));
    const script = `
      const { BoardScheduler } = await import(${JSON.stringify(module)});
      const { timerfdBoardTimer } = await import(${JSON.stringify(timerfd)});
      const s = new BoardScheduler(undefined, timerfdBoardTimer());
      const t0 = process.hrtime.bigint();
      s.after(200, () => {
        console.log('ran', process.hrtime.bigint() - t0 >= 200_000_000n);
        s.after(100_000, () => console.log('never')).cancel();
      });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // Generous: the child only has to exit at all once its one callback ran (tsx start-up included).
    const code = await new Promise<number | null>((resolve, reject) => {
      const kill = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit; output: ${out}`));
      }, 60_000);
      child.on('close', (c) => {
        clearTimeout(kill);
        resolve(c);
      });
    });
    assert.equal(code, 0);
    assert.equal(out.trim(), 'ran true');
  });
});
