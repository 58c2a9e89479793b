import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { summarize } from '../../src/bench/percentiles.ts';

// Smoke tests only: tiny iteration counts, no timing assertions (the machine is shared and noisy).
const dir = mkdtempSync(join(tmpdir(), 'vgpio-bench-'));
const socket = join(dir, 'gpio.sock');
const cli = join(import.meta.dirname, '../../src/cli/main.ts'); // through tsx: no build needed
let daemon: ReturnType<typeof spawn>;

before(async () => {
  daemon = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--socket', socket, '--lines', '64'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    daemon.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('serving')) resolve();
    });
    daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${err}`)));
  });
});
after(() => {
  daemon.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('summarize: nearest-rank percentiles', () => {
  const s = summarize(Array.from({ length: 100 }, (_, i) => 100 - i));
  assert.deepEqual(s, { n: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  assert.equal(summarize([7]).p99, 7);
});

test('vgpio bench --json reports every measure, the floor and the placement', () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'bench', '--socket', socket, '--iterations', '50', '--json'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.roundTrip.n, 50);
  assert.deepEqual(
    j.throughput.map((t: { linesInFlight: number }) => t.linesInFlight),
    [1, 64],
  );
  assert.equal(j.interrupt.n, 5);
  assert.match(j.interrupt.drive, /control endpoint/);
  assert.equal(j.floor.n, 50);
  assert.ok(j.floor.p50 > 0 && j.roundTrip.p50 > 0);
  assert.equal(typeof j.placement.backendCpu, 'number');
  assert.ok(Array.isArray(j.placement.benchAffinity) && j.placement.benchAffinity.length > 0);
});

test('vgpio bench prints the table with the floor beside the round trip', () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'bench', '--socket', socket, '--iterations', '20', '--cpu', '0'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /GET_VALUE round trip\s+20\s/);
  assert.match(r.stdout, /GET_VALUE, 64 line\(s\) in flight/);
  assert.match(r.stdout, /floor: eventfd ping-pong, 2 processes\s+20\s/);
  assert.match(r.stdout, /bench affinity \[0\]/);
});

test('vgpio conformance against the daemon: all PASS, exit 0; --json parses', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'conformance', '--socket', socket], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /inputs driven by vgpio control endpoint/);
  assert.match(r.stdout, /\n(\d+) passed, 0 failed, 0 warnings, 0 skipped\n/);
  assert.deepEqual(
    r.stdout.split('\n').filter((l) => l.length > 100),
    [],
  );
  const j = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'conformance', '--socket', socket, '--only', 'irq.edge', '--json'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(j.status, 0, j.stderr);
  const ids = JSON.parse(j.stdout).results.map(
    (x: { id: string; outcome: string }) => `${x.id}:${x.outcome}`,
  );
  assert.deepEqual(ids, [
    'irq.edge:PASS',
    'irq.edge-filter:PASS',
    'irq.edge-both:PASS',
    'irq.edge-latched:PASS',
    'irq.edge-coalesced:PASS',
  ]);
});

test('vgpio conformance on a missing socket: harness error, exit 3', () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'conformance', '--socket', join(dir, 'nope.sock'), '--wait-ms', '100'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 3);
  assert.match(r.stderr, /harness error: back-end not listening at .*nope\.sock within 100 ms: .*ENOENT/);
});
