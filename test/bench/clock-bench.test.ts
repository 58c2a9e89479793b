// The clock bench as a user runs it: the CLI in its own process, both wake sources. Smoke only: short
// runs, and bounds that hold on a loaded machine (what was measured adds up; nothing is early by more
// than its source allows), never on the figures themselves.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type { ClockBenchResult } from '../../src/bench/clock-bench.ts';

const bench = new URL('../../src/bench/clock-bench.ts', import.meta.url).pathname;

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', bench, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

function checkResult(r: ClockBenchResult, periodMs: number): void {
  assert.equal(r.periodMs, periodMs);
  assert.ok(r.rises > 0, `${r.rises} rising edges`);
  assert.ok(r.skipped >= 0);
  // Every rising edge but the first stands for its own deadline; with the skipped ones they span the run.
  assert.ok(r.rises + r.skipped >= r.expected / 4, `${r.rises} + ${r.skipped} of ${r.expected}`);
  assert.equal(r.latenessUs.n > 0, true);
  // Each edge is matched to its deadline by the scheduler's own rule (the next one, or past the
  // skipped ones): the median edge is no earlier than its source allows and less than a period late.
  // Single edges can be late by several periods when the process waits for a CPU.
  assert.ok(r.latenessUs.p50 >= -r.earlyUs - 1, `p50 ${r.latenessUs.p50} µs`);
  assert.ok(r.latenessUs.p50 < periodMs * 1000, `p50 ${r.latenessUs.p50} µs`);
  assert.ok(r.latenessUs.p99 <= r.latenessUs.max && Number.isFinite(r.latenessUs.max));
  assert.ok(Number.isFinite(r.periodErrorUs) && Math.abs(r.periodErrorUs) < periodMs * 1000);
  assert.ok(r.cpuShare > 0 && r.cpuShare < 2, `cpu ${r.cpuShare}`);
  assert.ok(r.loadAverage >= 0);
}

test('--compare --json: one result per wake source, node then timerfd', async () => {
  const { code, out, err } = await run(['--compare', '--json', '--seconds', '0.5', '--period-ms', '2']);
  assert.equal(code, 0, err);
  const results = JSON.parse(out) as ClockBenchResult[];
  assert.deepEqual(
    results.map((r) => r.timer),
    ['node', 'timerfd'],
  );
  for (const r of results) checkResult(r, 2);
  assert.equal(results[0].earlyUs, 500);
  assert.equal(results[1].earlyUs, 20);
});

test('the default source is the timerfd; the text report names it and the load average', async () => {
  const { code, out, err } = await run(['--seconds', '0.5', '--period-ms', '2']);
  assert.equal(code, 0, err);
  assert.match(out, /on timerfd timers: \d+ rising edges of \d+ deadlines \(\d+ skipped\)/);
  assert.match(out, /lateness vs absolute deadline: p50 -?\d+ µs, p99 -?\d+ µs/);
  assert.match(out, /CPU: [\d.]+ % of one core/);
  assert.match(out, /load average [\d.]+ on \d+ cores/);
});

test('--reference --json: the wake-ups alone are measured beside the clock', async () => {
  const { code, out, err } = await run(['--reference', '--json', '--seconds', '0.5', '--period-ms', '2']);
  assert.equal(code, 0, err);
  const r = JSON.parse(out) as {
    results: ClockBenchResult[];
    wakeOnlyCpuShare: number;
    cFloorCpuShare: number;
  };
  assert.equal(r.results.length, 1);
  checkResult(r.results[0], 2);
  assert.ok(r.wakeOnlyCpuShare > 0 && r.wakeOnlyCpuShare < 2, `${r.wakeOnlyCpuShare}`);
  // npm run install builds the C loop beside the addon.
  assert.ok(r.cFloorCpuShare > 0 && r.cFloorCpuShare < 2, `${r.cFloorCpuShare}`);
});

test('bad options are refused with a message, exit 2', async () => {
  for (const args of [
    ['--timer', 'sundial'],
    ['--period-ms', '0'],
    ['--seconds', 'x'],
  ]) {
    const { code, err } = await run(args);
    assert.equal(code, 2, args.join(' '));
    assert.match(err, /clock bench: /);
  }
});
