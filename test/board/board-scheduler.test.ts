// Board time: absolute deadlines in a min-heap behind one Node timer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BoardScheduler, EARLY_NS } from '../../src/board/board-scheduler.ts';

test('callbacks run in deadline order, ties in the order scheduled; cancelled ones never run', async () => {
  const s = new BoardScheduler();
  const now = process.hrtime.bigint();
  const ran: string[] = [];
  // c is far enough after b2 that a slow start (b2's after() counts from a later "now") keeps the order.
  s.at(now + 12_000_000n, () => ran.push('c'));
  s.at(now + 1_000_000n, () => ran.push('a1'));
  s.at(now + 1_000_000n, () => ran.push('a2'));
  s.at(now + 2_000_000n, () => ran.push('b')).cancel();
  s.after(2, () => ran.push('b2'));
  await sleep(40);
  assert.deepEqual(ran, ['a1', 'a2', 'b2', 'c']);
  assert.equal(s.pending, 0);
  s.close();
});

test('nothing runs earlier than EARLY_NS before its deadline', async () => {
  const s = new BoardScheduler();
  const early: number[] = [];
  for (let i = 0; i < 40; i++) {
    const deadline = process.hrtime.bigint() + BigInt(i * 250_000);
    s.at(deadline, () => early.push(Number(deadline - process.hrtime.bigint())));
  }
  await sleep(30);
  assert.equal(early.length, 40);
  for (const e of early) assert.ok(e <= Number(EARLY_NS), `ran ${e} ns early`);
  s.close();
});

test('every: run k stands for start + k·period; a run a whole period late skips what it missed', async () => {
  const s = new BoardScheduler();
  const start = process.hrtime.bigint();
  const runs: Array<{ k: number; lateNs: bigint }> = [];
  const t = s.every(
    5,
    (k) => {
      runs.push({ k, lateNs: process.hrtime.bigint() - (start + BigInt(k) * 5_000_000n) });
      // Block the loop for 3.5 periods once: the deadlines it covers are skipped, not burst.
      if (k === 2) {
        const until = process.hrtime.bigint() + 17_500_000n;
        while (process.hrtime.bigint() < until);
      }
    },
    start,
  );
  await sleep(60);
  t.cancel();
  const ks = runs.map((r) => r.k);
  // Run 3 comes late (the stall was in run 2) and the deadlines it was late past are skipped.
  assert.deepEqual(ks.slice(0, 3), [1, 2, 3], ks.join(','));
  assert.ok(ks[3] >= 6, `after the stall: ${ks.join(',')}`);
  for (let i = 1; i < ks.length; i++) assert.ok(ks[i] > ks[i - 1], ks.join(','));
  for (const r of runs) assert.ok(r.lateNs >= -EARLY_NS, `run ${r.k} early by ${-r.lateNs} ns`);
  const n = runs.length;
  await sleep(15);
  assert.equal(runs.length, n, 'cancelled');
  s.close();
});

test('a zero-delay loop runs one step per timer turn: the event loop keeps turning', async () => {
  const s = new BoardScheduler();
  let steps = 0;
  const loop = () => {
    steps++;
    s.at(process.hrtime.bigint(), loop);
  };
  s.at(process.hrtime.bigint(), loop);
  const t0 = performance.now();
  await sleep(20);
  assert.ok(performance.now() - t0 < 200, 'a plain timer still fired');
  assert.ok(steps > 1 && steps < 100, `${steps} steps in 20 ms (about one per 1 ms timer)`);
  s.close();
  const after = steps;
  await sleep(10);
  assert.equal(steps, after, 'closed: nothing runs');
});

test('a throwing callback is reported; the others still run', async () => {
  const errors: unknown[] = [];
  const s = new BoardScheduler((e) => errors.push(e));
  const ran: number[] = [];
  s.after(1, () => {
    throw new Error('boom');
  });
  s.after(1, () => ran.push(1));
  await sleep(15);
  assert.deepEqual(ran, [1]);
  assert.equal((errors[0] as Error).message, 'boom');
  s.close();
});
