import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatLoopback, loopbackBench } from '../../src/bench/loopback-bench.ts';

// Smoke tests only: tiny iteration counts, no timing assertions (the machine is shared and noisy).
const script = join(import.meta.dirname, '../../src/bench/loopback-bench.ts');

test('loopbackBench: the three scenarios, every operation counted, percentiles in order', async () => {
  const results = await loopbackBench(128, 0);
  assert.deepEqual(
    results.map((r) => [r.scenario, r.ops]),
    [
      ['GET_VALUE, 1 in flight', 128],
      ['GET_VALUE, 64 in flight', 128],
      ['IRQ round trip (edge → handler → ack)', 128],
    ],
  );
  for (const r of results) {
    assert.ok(r.seconds > 0 && r.opsPerSecond > 0, JSON.stringify(r));
    assert.ok(r.p50Us > 0 && r.p50Us <= r.p99Us, JSON.stringify(r));
  }
  assert.match(
    formatLoopback(results, 128),
    /^vgpio loopback bench .*128 iterations per scenario\)\nscenario /,
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
  assert.equal(j.results.length, 3);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', script, '--iterations', '10'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--iterations must be an integer >= 64 \(got 10\)/);
});
