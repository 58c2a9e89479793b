import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CBenchFrontend, cFrontendProgram } from '../../src/bench/bench-frontend-c.ts';
import { ControlClient } from '../../src/control/control-client.ts';
import { startDaemon, type Daemon } from '../daemon/daemon-harness.ts';

// The C front-end (native/bench-frontend.c) against a real `vgpio serve`: small counts, no timing
// assertions (the machine is shared).
const dir = mkdtempSync(join(tmpdir(), 'vgpio-cfe-'));
const socket = join(dir, 'gpio.sock');
let daemon: Daemon;

before(async () => {
  daemon = await startDaemon(['--socket', socket, '--lines', '16']);
});
after(async () => {
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function setInputs(levels: readonly (0 | 1)[]): Promise<void> {
  const c = await ControlClient.connect(socket);
  try {
    for (const [line, value] of levels.entries()) {
      const r = await c.request({ op: 'input', line, value });
      assert.ok(r.ok, JSON.stringify(r));
    }
  } finally {
    c.close();
  }
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cFrontendProgram, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

test('C front-end: GET_VALUE replies decoded: the levels set through the control socket, then changed', async () => {
  const first: (0 | 1)[] = [1, 0, 1, 1, 0, 0, 1, 0];
  await setInputs(first);
  const f = await CBenchFrontend.open(socket);
  try {
    assert.equal(f.ngpio, 16);
    await f.setInputs(8);
    assert.deepEqual(await f.values(8), first);
    const second = first.map((v) => (v === 1 ? 0 : 1));
    await setInputs(second);
    assert.deepEqual(await f.values(8), second);

    const rt = await f.roundTrips(25);
    assert.equal(rt.samplesUs.length, 25);
    assert.ok(
      rt.samplesUs.every((x) => x > 0),
      'every round trip takes time',
    );
    assert.ok(rt.cpuNs > 0);
    const tp = await f.inFlight(8, 100);
    assert.equal(tp.requests, 104); // whole rounds of 8
    assert.ok(tp.ns > 0 && tp.cpuNs > 0);
    const tpl = await f.inFlightLatencies(8, 20);
    assert.equal(tpl.requests, 24);
    assert.equal(tpl.samplesUs.length, 24);
    assert.ok(
      tpl.samplesUs.every((x) => x > 0),
      'every request under load takes time',
    );
  } finally {
    await f.close(); // quit: the C side checks that GET_VRING_BASE is where its avail index is
  }
  assert.ok((f.kicks?.sent ?? 0) > 0, JSON.stringify(f.kicks));
});

test('C front-end standalone --json: every measure, and the values of the lines used', async () => {
  const levels: (0 | 1)[] = [0, 1, 1, 0];
  await setInputs(levels);
  const r = await run([
    '--socket',
    socket,
    '--iterations',
    '40',
    '--warmup',
    '5',
    '--in-flight',
    '1,4',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.socket, socket);
  assert.equal(j.ngpio, 16);
  assert.equal(j.wait, 'read');
  assert.deepEqual(j.values, levels);
  assert.equal(j.roundTrip.n, 40);
  assert.ok(j.roundTrip.p50 > 0 && j.roundTrip.p50 <= j.roundTrip.p99);
  assert.deepEqual(
    j.throughput.map((t: { linesInFlight: number; requests: number }) => [t.linesInFlight, t.requests]),
    [
      [1, 40],
      [4, 40],
    ],
  );
  // SET_DIRECTION ×4, warm-up, round trips, one GET_VALUE per line, both rates: where the ring stopped.
  assert.equal(j.stoppedAt, 4 + 5 + 40 + 4 + 40 + 40);
});

test('C front-end --spin --event-idx: the same values, completions found by polling', async () => {
  await setInputs([1, 1, 0]);
  const f = await CBenchFrontend.open(socket, { spin: true, eventIdx: true });
  try {
    assert.deepEqual(await f.values(3), [1, 1, 0]);
    assert.equal((await f.inFlight(3, 30)).requests, 30);
  } finally {
    await f.close();
  }
});

test('C front-end --event-idx, blocking: used_event asks for each call it sleeps for', async () => {
  // A wrong used_event would leave it asleep in read(2): its watchdog would end the run.
  await setInputs([0, 1]);
  const f = await CBenchFrontend.open(socket, { eventIdx: true });
  try {
    assert.deepEqual(await f.values(2), [0, 1]);
    assert.equal((await f.roundTrips(50)).samplesUs.length, 50);
    assert.equal((await f.inFlight(8, 200)).requests, 200);
  } finally {
    await f.close();
  }
});

test('C front-end against a busy-polling back-end (serve --poll-us): kicks suppressed, none lost', async () => {
  const polled = join(dir, 'polled.sock');
  const d = await startDaemon(['--socket', polled, '--lines', '8', '--poll-us', '500']);
  try {
    for (const eventIdx of [false, true]) {
      const f = await CBenchFrontend.open(polled, { eventIdx });
      try {
        // Requests spaced wider and narrower than the poll window: found by polling, or kicked.
        assert.equal((await f.roundTrips(100)).samplesUs.length, 100);
        await new Promise((r) => setTimeout(r, 5));
        assert.equal((await f.inFlight(8, 400)).requests, 400);
        await new Promise((r) => setTimeout(r, 5));
        assert.deepEqual(await f.values(8), [0, 0, 0, 0, 0, 0, 0, 0]);
      } finally {
        await f.close();
      }
      // Requests made available while the back-end polled (or drained the ring) went without a
      // kick, and were still served: every count above is complete.
      assert.ok(f.kicks && f.kicks.suppressed > 0 && f.kicks.sent > 0, JSON.stringify(f.kicks));
    }
  } finally {
    await d.stop();
  }
});

test('C front-end: more lines in flight than the back-end has is refused with the limit named', async () => {
  const f = await CBenchFrontend.open(socket);
  await assert.rejects(
    f.inFlight(17, 100),
    /tp 17: at most min\(ngpio 16, queue size \/ 2 = 128\) lines in flight/,
  );
  await f.close();
});

test('C front-end against sockets that are not vhost-user: a clear error, exit 1', async () => {
  const junk = join(dir, 'junk.sock');
  const closer = join(dir, 'closer.sock');
  const servers: Server[] = [
    // (The client may reset these connections: their errors are expected, not the test's.)
    createServer((c) => c.on('error', () => undefined).end('HTTP/1.1 400 Bad Request\r\n\r\n')).listen(junk),
    createServer((c) => c.on('error', () => undefined).destroy()).listen(closer),
  ];
  try {
    const a = await run(['--socket', junk, '--iterations', '10']);
    assert.equal(a.code, 1);
    assert.match(
      a.stderr,
      /^vgpio_bench_frontend: expected the reply to GET_FEATURES \(1\), got message \d+: is this a vhost-user back-end\?\n$/,
    );
    const b = await run(['--socket', closer, '--iterations', '10']);
    assert.equal(b.code, 1);
    assert.match(
      b.stderr,
      /back-end closed the connection (while we waited for the reply to|when we sent) GET_FEATURES/,
    );
    // The daemon's control endpoint speaks JSON lines and waits for a newline that never comes.
    const c = await run(['--socket', `${socket}.ctl`, '--iterations', '10']);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /no reply to GET_FEATURES within 5 s: is this a vhost-user back-end\?/);
    const d = await run(['--socket', join(dir, 'missing.sock')]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /cannot connect to .*missing\.sock: No such file or directory/);
    await assert.rejects(
      CBenchFrontend.open(junk),
      /C front-end on .*junk\.sock: vgpio_bench_frontend: expected the reply/,
    );
  } finally {
    for (const s of servers) s.close();
  }
});

test('C front-end: usage errors exit 2', async () => {
  const r = await run(['--socket', socket, '--in-flight', '1,0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--in-flight: a list of up to 16 counts in \[1, 128\] \(got 1,0\)/);
  const q = await run(['--socket', socket, '--queue-size', '100']);
  assert.equal(q.code, 2);
  assert.match(q.stderr, /--queue-size must be a power of two \(got 100\)/);
});
