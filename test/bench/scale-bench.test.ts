import assert from 'node:assert/strict';
import { test } from 'node:test';
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
