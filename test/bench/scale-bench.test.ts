import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cFrontendBuilt } from '../../src/bench/bench-frontend-c.ts';
import { formatScale, scaleBench } from '../../src/bench/scale-bench.ts';

// Smoke test only (the machine is shared and noisy): real daemons and front-end processes, tiny
// durations, no timing assertions.
test('scale bench: two devices over two daemons, every figure measured', async () => {
  const r = await scaleBench({
    devices: 2,
    lines: 4,
    clients: 1,
    daemons: 2,
    workers: 0,
    frontend: 'node',
    requests: 1000,
    inFlight: 4,
    seconds: 0.5,
    idleSeconds: 1,
    settleSeconds: 0.5,
    serveArgs: [],
  });
  assert.equal(r.daemonPids.length, 2);
  assert.ok(r.load.requests > 0 && r.load.requestsPerSec > 0, JSON.stringify(r.load));
  assert.ok(r.load.latency.n > 0 && r.load.latency.p50 <= r.load.latency.p99);
  assert.ok(r.load.daemonCpuUsPerRequest !== null && r.load.daemonCpuUsPerRequest > 0);
  for (const v of Object.values(r.rssBytes)) assert.ok(v !== null && v > 10 * 1024 * 1024, `RSS ${v}`);
  assert.ok(Number.isFinite(r.idle.daemonWakeupsPerSec) && r.idle.daemonWakeupsPerSec >= 0);
  assert.match(formatScale(r), /2 devices × 4 lines in 2 daemon\(s\), 1 front-end processes/);
});

test(
  'scale bench: --workers 2 with a C front-end per device, every figure measured',
  { skip: cFrontendBuilt() ? false : 'the C front-end is not built (npm run install)' },
  async () => {
    const r = await scaleBench({
      devices: 2,
      lines: 4,
      clients: 1,
      daemons: 1,
      workers: 2,
      frontend: 'c',
      requests: 2000,
      inFlight: 4,
      seconds: 0.5,
      idleSeconds: 1,
      settleSeconds: 0.5,
      serveArgs: [],
    });
    // Each C front-end made exactly its requests, and timed every one (every 16th kept).
    assert.equal(r.load.requests, 2 * 2000);
    assert.equal(r.load.latency.n, (2 * 2000) / 16);
    assert.ok(r.load.latency.p50 > 0 && r.load.latency.p50 <= r.load.latency.p99);
    assert.ok(
      r.load.busiestThreads.length > 0 && r.load.busiestThreads[0] > 0,
      String(r.load.busiestThreads),
    );
    assert.ok(r.load.daemonCpuUsPerRequest !== null && r.load.daemonCpuUsPerRequest > 0);
    assert.match(
      formatScale(r),
      /2 devices × 4 lines in 1 daemon\(s\) with 2 workers each, a C front-end per device/,
    );
  },
);
