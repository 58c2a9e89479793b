import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { summarize } from '../../src/bench/percentiles.ts';
import { getAffinity } from '../../src/native/index.ts';

// Smoke tests only: tiny iteration counts, no timing assertions (the machine is shared and noisy).
const dir = mkdtempSync(join(tmpdir(), 'vgpio-bench-'));
const socket = join(dir, 'gpio.sock');
const cli = join(import.meta.dirname, '../../src/cli/main.ts'); // through tsx: no build needed
// A vhost-user socket serves one front-end at a time: side-by-side runs need a second daemon.
const socket2 = join(dir, 'gpio2.sock');
let daemon: ReturnType<typeof spawn>;
let daemon2: ReturnType<typeof spawn>;

async function serve(path: string): Promise<ReturnType<typeof spawn>> {
  const d = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--socket', path, '--lines', '64'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    d.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('serving')) resolve();
    });
    d.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${err}`)));
  });
  return d;
}

before(async () => {
  [daemon, daemon2] = await Promise.all([serve(socket), serve(socket2)]);
});
after(() => {
  daemon.kill('SIGTERM');
  daemon2.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('summarize: nearest-rank percentiles', () => {
  const s = summarize(Array.from({ length: 100 }, (_, i) => 100 - i));
  assert.deepEqual(s, { n: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  assert.equal(summarize([7]).p99, 7);
});

const runBench = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', cli, 'bench', ...args], {
    encoding: 'utf8',
    timeout: 90_000,
  });

test('vgpio bench --json reports every measure, both floors, CPU per request and the placement', () => {
  const r = runBench(['--socket', socket, '--iterations', '50', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  // The C front-end is built with the addon, so it is the default.
  assert.equal(j.frontend, 'c');
  assert.equal(j.wait, 'read');
  assert.equal(j.targets.length, 1);
  const t = j.targets[0];
  assert.equal(t.socket, socket);
  assert.equal(t.roundTrip.n, 50);
  assert.deepEqual(
    t.throughput.map((x: { linesInFlight: number }) => x.linesInFlight),
    [1, 8, 64],
  );
  for (const x of t.throughput) {
    assert.ok(x.requests >= 50 && x.requestsPerSec > 0, JSON.stringify(x));
    // CPU per request of each measure, both sides: the back-end served these requests.
    assert.ok(x.cpu.backendUs > 0 && x.cpu.frontendUs > 0, JSON.stringify(x));
  }
  assert.ok(t.roundTripCpu.backendUs > 0 && t.roundTripCpu.frontendUs > 0, JSON.stringify(t.roundTripCpu));
  assert.equal(t.interrupt.n, 5);
  assert.match(t.interrupt.drive, /control endpoint/);
  // The back-end is found by its socket: its pid is the daemon's, and it spent CPU time on the requests.
  assert.equal(t.backendPid, daemon.pid);
  assert.ok(t.backendCpuUsPerRequest > 0 && t.benchCpuUsPerRequest > 0, JSON.stringify(t));
  assert.equal(j.floor.node.n, 50);
  assert.equal(j.floor.c.n, 50, JSON.stringify(j.floor.c));
  assert.ok(j.floor.c.p50 > 0 && j.floor.node.p50 > 0 && t.roundTrip.p50 > 0);
  assert.equal(t.ratios.roundTripP50OverCFloorP50, t.roundTrip.p50 / j.floor.c.p50);
  assert.equal(typeof t.backendCpu, 'number');
  assert.equal(j.placement.mode, null);
  assert.ok(Array.isArray(j.placement.benchAffinity) && j.placement.benchAffinity.length > 0);
});

test('vgpio bench: two sockets interleaved, --placement same pins the back-end and restores it', () => {
  const before = readFileSync(`/proc/${daemon.pid}/status`, 'utf8').match(/Cpus_allowed_list:\s+(\S+)/)?.[1];
  const r = runBench([
    '--socket',
    socket,
    '--socket',
    socket2,
    '--iterations',
    '20',
    '--in-flight',
    '1,4',
    '--rounds',
    '2',
    '--placement',
    'same',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.rounds, 2);
  assert.deepEqual(
    j.targets.map((t: { socket: string }) => t.socket),
    [socket, socket2],
  );
  for (const t of j.targets)
    assert.deepEqual(
      t.throughput.map((x: { linesInFlight: number }) => x.linesInFlight),
      [1, 4],
    );
  const cpu = j.placement.benchAffinity[0];
  assert.equal(j.placement.mode, 'same');
  // The C front-ends ran pinned to the bench's CPU, beside the back-ends.
  assert.deepEqual(
    j.targets.map((t: { frontendCpu: number }) => t.frontendCpu),
    [cpu, cpu],
  );
  assert.equal(j.placement.backendPinnedTo, cpu);
  assert.deepEqual(
    j.targets.map((t: { backendPid: number }) => t.backendPid),
    [daemon.pid, daemon2.pid],
  );
  assert.deepEqual(j.placement.floorCpus, [cpu, cpu]);
  assert.equal(j.floor.c.childCpu, cpu);
  assert.equal(j.floor.node.childCpu, cpu);
  const after = readFileSync(`/proc/${daemon.pid}/status`, 'utf8').match(/Cpus_allowed_list:\s+(\S+)/)?.[1];
  assert.equal(after, before);
});

test(
  "vgpio bench --placement split: the C front-end on the bench CPU, the back-end and the floors' peers on another",
  { skip: getAffinity().length < 2 ? 'needs two CPUs' : false },
  () => {
    const r = runBench([
      '--socket',
      socket,
      '--iterations',
      '20',
      '--in-flight',
      '2',
      '--placement',
      'split',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const [bench, peer] = j.placement.floorCpus;
    assert.notEqual(bench, peer);
    assert.equal(j.placement.mode, 'split');
    assert.equal(j.placement.backendPinnedTo, peer);
    assert.equal(j.targets[0].frontendCpu, bench);
    assert.equal(j.floor.c.parentCpu, bench);
    assert.equal(j.floor.c.childCpu, peer);
  },
);

test('vgpio bench prints one table per socket, the two floors and the side-by-side ratios', () => {
  const r = runBench(['--socket', socket, '--socket', socket2, '--iterations', '20', '--cpu', '0']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /GET_VALUE round trip\s+20\s/);
  assert.match(r.stdout, /GET_VALUE, 8 line\(s\) in flight/);
  assert.match(r.stdout, /GET_VALUE, 64 line\(s\) in flight/);
  assert.match(r.stdout, /C \(blocking read\)\s+20\s/);
  assert.match(r.stdout, /Node \(uv_poll, as the transports\)\s+20\s/);
  assert.match(r.stdout, /side by side \(interleaved, 5 rounds\)/);
  assert.match(r.stdout, /CPU per request: back-end \d+\.\d+ µs/);
  assert.match(
    r.stdout,
    /^front-end: C \(vgpio_bench_frontend\), waiting by read\(2\) on the call eventfd\n/,
  );
  assert.match(r.stdout, /front-end \(C\) \d+\.\d+ µs/);
  assert.match(r.stdout, /GET_VALUE round trip\s+20\s.*\s\d+\.\d\d \/ \d+\.\d\d\n/);
  assert.match(r.stdout, /bench affinity \[0\]/);
});

test('vgpio bench --frontend node: the same measures through our Node driver', () => {
  const r = runBench([
    '--socket',
    socket,
    '--iterations',
    '20',
    '--in-flight',
    '1,8',
    '--frontend',
    'node',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.frontend, 'node');
  assert.equal(j.wait, null);
  const t = j.targets[0];
  assert.equal(t.roundTrip.n, 20);
  assert.deepEqual(
    t.throughput.map((x: { linesInFlight: number; requests: number }) => [x.linesInFlight, x.requests]),
    [
      [1, 20],
      [8, 40],
    ],
  );
  assert.ok(t.benchCpuUsPerRequest > 0);
});

test('vgpio bench --frontend c --spin --event-idx: completions polled', () => {
  const r = runBench([
    '--socket',
    socket,
    '--iterations',
    '20',
    '--in-flight',
    '4',
    '--spin',
    '--event-idx',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.frontend, 'c');
  assert.equal(j.wait, 'spin');
  assert.equal(j.targets[0].roundTrip.n, 20);
});

test('vgpio bench: bad --frontend, and C-only options with the Node front-end, are usage errors', () => {
  const a = runBench(['--socket', socket, '--frontend', 'rust']);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /--frontend must be c or node \(got rust\)/);
  const b = runBench(['--socket', socket, '--frontend', 'node', '--spin']);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--spin and --event-idx are options of the C front-end/);
});

test('vgpio bench: bad --placement and --placement with --cpu are usage errors', () => {
  const a = runBench(['--socket', socket, '--placement', 'diagonal']);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /--placement must be same or split \(got diagonal\)/);
  const b = runBench(['--socket', socket, '--placement', 'same', '--cpu', '0']);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /exclusive/);
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
