import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { SCENARIO_NAMES, formatLoopback, loopbackBench } from '../../src/bench/loopback-bench.ts';

// Smoke tests only: tiny iteration counts, no timing assertions (the machine is shared and noisy).
const script = join(import.meta.dirname, '../../src/bench/loopback-bench.ts');

test('loopbackBench: every scenario, every operation counted, percentiles in order', async () => {
  const results = await loopbackBench(128, 0);
  assert.deepEqual(
    results.map((r) => [r.scenario, r.ops]),
    [
      ['GET_VALUE, 1 in flight (await)', 128],
      ['GET_VALUE, 8 in flight (await)', 128],
      ['GET_VALUE, 64 in flight (await)', 128],
      ['GET_VALUE, 1 in flight (send)', 128],
      ['GET_VALUE, 8 in flight (send)', 128],
      ['GET_VALUE, 64 in flight (send)', 128],
      ['getValues of 64 lines, batched', 128],
      ['IRQ round trip (edge → handler → ack)', 128],
    ],
  );
  assert.deepEqual(
    SCENARIO_NAMES,
    results.map((r) => r.scenario),
  );
  for (const r of results) {
    assert.ok(r.seconds > 0 && r.opsPerSecond > 0 && r.cpuUsPerOp > 0, JSON.stringify(r));
    assert.ok(r.p50Us > 0 && r.p50Us <= r.p99Us, JSON.stringify(r));
  }
  assert.match(
    formatLoopback(results, 128),
    /^vgpio loopback bench .*128 iterations per scenario\)\nscenario /,
  );
});

test('--only picks scenarios by words in their names', async () => {
  const results = await loopbackBench(64, 0, ['send', 'IRQ']);
  assert.deepEqual(
    results.map((r) => r.scenario),
    SCENARIO_NAMES.filter((n) => n.includes('(send)') || n.startsWith('IRQ')),
  );
});

test('npm run bench script: --json runs as a program; a too small --iterations exits 2', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--iterations', '64', '--json'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.iterations, 64);
  assert.equal(j.results.length, SCENARIO_NAMES.length);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', script, '--iterations', '10'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--iterations must be an integer >= 64 \(got 10\)/);
  const none = spawnSync(
    process.execPath,
    ['--import', 'tsx', script, '--iterations', '64', '--only', 'nothing'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--only nothing: no scenario matches/);
});
