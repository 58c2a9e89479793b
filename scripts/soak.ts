// A bounded soak of the daemon against a hostile front-end (issue 9), a tool, not a CI test:
//   npm run soak -- --minutes N [--seed S]
// Starts `vgpio serve --config` with devices A and B (a child process, from src/ through tsx). For N
// minutes this process is A's front-end from hell: random mutated vhost-user messages (request ids,
// flags, sizes, payload bytes, attached fds of every kind), valid activations followed by
// corrupted rings and kicks, now and then guest memory truncated under the daemon, abrupt
// reconnects. Meanwhile a worker thread (scripts/soak-driver-b.ts) is B's well-behaved driver, timing
// GET_VALUE round trips (a quiet baseline first, then under attack), and this thread asks both control
// endpoints for status once a second. At the end it sends SIGTERM and reports counts, B's
// latency, the log volume, and whether the daemon survived and stopped in time. Exit 1 if not.
import { execFileSync, spawn } from 'node:child_process';
import { constants, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ControlClient } from '../src/control/control-client.ts';
import { closeQuietly, eventfd, eventfdWrite, memfdCreate, socketPair } from '../src/native/index.ts';
import { MessageType } from '../src/protocol/constants.ts';
import { Flag, Request, decodeU64, encodeMessage } from '../src/transports/vhost-user/message.ts';
import { MiniDriver, RawClient, rawActivate } from '../test/transports/vhost-user/harness.ts';
import type { DriverBResult } from './soak-driver-b.ts';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '1' }, seed: { type: 'string' } },
});
const minutes = Number(values.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) {
  console.error('soak: --minutes must be a number of minutes > 0');
  process.exit(2);
}
const seed = values.seed === undefined ? Date.now() >>> 0 : Number(values.seed) >>> 0;

/** mulberry32: small, seedable, good enough to pick mutations. */
let state = seed;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const int = (n: number): number => Math.floor(random() * n);
const chance = (p: number): boolean => random() < p;
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));

const counts = {
  episodes: 0,
  messagesSent: 0,
  repliesOk: 0,
  errorsReplied: 0,
  otherReplies: 0,
  disconnectsByDaemon: 0,
  activations: 0,
  ringCorruptions: 0,
  truncations: 0,
  controlChecks: 0,
  controlFailures: 0,
};

// ---- the daemon --------------------------------------------------------------------------------

const dir = mkdtempSync(`${tmpdir()}/vgpio-soak-`);
const pathA = `${dir}/a.sock`;
const pathB = `${dir}/b.sock`;
writeFileSync(
  `${dir}/devices.json`,
  JSON.stringify({
    devices: [
      { socket: pathA, lines: 8 },
      { socket: pathB, lines: 4 },
    ],
  }),
);
const root = new URL('..', import.meta.url).pathname;
const daemon = spawn(
  process.execPath,
  ['--import', 'tsx', `${root}src/cli/main.ts`, 'serve', '--config', `${dir}/devices.json`],
  { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
);
let logBytes = 0;
let logTail = '';
let exited: { code: number | null; signal: string | null } | null = null;
const hasExited = (): boolean => exited !== null;
daemon.stderr.setEncoding('utf8');
daemon.stderr.on('data', (s: string) => {
  logBytes += Buffer.byteLength(s);
  logTail = (logTail + s).slice(-4000);
});
const exitedP = new Promise<void>((resolve) =>
  daemon.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve();
  }),
);
while (!/ serving /.test(logTail)) {
  if (hasExited()) throw new Error(`the daemon exited before serving:\n${logTail}`);
  await sleep(20);
}

// ---- the hostile front-end on A -----------------------------------------------------------------

const REQUESTS = Object.values(Request);
/** One FIFO (a pipe by name; made once, mkfifo would block this thread each time), sent as a copy. */
execFileSync('mkfifo', [`${dir}/fifo`]);
const fifo = openSync(`${dir}/fifo`, constants.O_RDWR | constants.O_NONBLOCK);
/** fds of every kind, some of them what a message wants; the client's copies are closed after sending. */
function randomFds(): number[] {
  const fds: number[] = [];
  for (let i = int(3); i > 0; i--) {
    const kind = int(5);
    if (kind === 0 || kind === 1) fds.push(eventfd(0));
    else if (kind === 2) fds.push(memfdCreate('soak', 4096 * (1 + int(4))));
    else if (kind === 3) {
      const [a, b] = socketPair();
      closeQuietly(b);
      fds.push(a);
    } else {
      fds.push(fifo);
    }
  }
  return fds;
}

function mutatedMessage(c: RawClient): void {
  const request = chance(0.9) ? pick(REQUESTS) : int(64);
  const flags = chance(0.85) ? Flag.VERSION | Flag.NEED_REPLY : chance(0.5) ? Flag.VERSION : int(16);
  const size = chance(0.8) ? pick([0, 4, 8, 12, 16, 40, 72]) : int(4097);
  const payload = bytes(size);
  if (size >= 4 && chance(0.5)) payload.set([int(4), 0, 0, 0]); // a plausible ring index or count
  const fds = chance(0.3) ? randomFds() : [];
  if (chance(0.03)) {
    // A header announcing more (or less) than follows: the stream desyncs until we hang up.
    const raw = encodeMessage(request, flags, payload);
    new DataView(raw.buffer).setUint32(8, Math.max(0, size + int(64) - 32), true);
    try {
      c.sendBytes(raw, fds);
    } catch {
      // the socket is full or gone: the episode ends soon anyway
    }
  } else {
    c.send(request, payload, fds, flags);
  }
  fds.filter((fd) => fd !== fifo).forEach(closeQuietly);
  counts.messagesSent++;
}

async function collect(c: RawClient, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    let m;
    try {
      m = await c.next(Math.max(1, end - performance.now()));
    } catch {
      return; // nothing more within the time
    }
    if (m === null) return; // the daemon hung up
    if (m.size === 8 && m.flags === 0x5) {
      const v = decodeU64(m.payload);
      if (v === 0n) counts.repliesOk++;
      else if (v === 1n) counts.errorsReplied++;
      else counts.otherReplies++;
    } else counts.otherReplies++;
  }
}

async function episode(): Promise<void> {
  counts.episodes++;
  const c = RawClient.connect(pathA);
  let dispose = (): void => {};
  try {
    const shook = chance(0.8);
    if (shook) await c.handshake();
    if (shook && chance(0.5)) {
      const s = await rawActivate(c, { queueSize: pick([2, 16, 256]) });
      counts.activations++;
      dispose = s.dispose;
      const d = new MiniDriver(s);
      await d.request(MessageType.GET_VALUE, int(8));
      for (let i = int(20); i > 0; i--) {
        // Corrupt a ring: random descriptors, avail entries, avail idx; then kick.
        const l = s.layouts[int(2)];
        const at = pick([l.descAddr, l.availAddr, l.usedAddr]);
        s.memory.write(at + int(64), bytes(1 + int(32)));
        counts.ringCorruptions++;
        eventfdWrite(s.kick[int(2)], 1n);
      }
      if (chance(0.05)) {
        ftruncateSync(s.memfd, 0); // from here on, we touch that memory no more
        counts.truncations++;
        eventfdWrite(s.kick[0], 1n);
      }
    }
    for (let i = int(60); i > 0 && c.closedReason === null; i--) {
      mutatedMessage(c);
      if (chance(0.3)) await collect(c, 2);
    }
    await collect(c, chance(0.5) ? 10 : 1);
  } catch {
    // the daemon hung up on us mid-sequence, or refused what rawActivate insisted on
  } finally {
    if (c.closedReason !== null) counts.disconnectsByDaemon++;
    c.close();
    try {
      dispose();
    } catch {
      // already disposed
    }
  }
}

// ---- the well-behaved driver on B (a worker thread) and the control endpoints -----------------------

const BASELINE_MS = 5000;
const attackStart = Date.now() + BASELINE_MS;
const end = attackStart + minutes * 60_000;
// A worker gets no --import loader of its own: it registers tsx, then loads the driver.
const driverUrl = new URL('./soak-driver-b.ts', import.meta.url).href;
const driverB = new Worker(
  `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(driverUrl)}); })`,
  { eval: true, workerData: { path: pathB, end } },
);
const resultB = new Promise<DriverBResult>((resolve, reject) => {
  driverB.once('message', resolve);
  driverB.once('error', reject);
});

async function checkControl(): Promise<void> {
  while (Date.now() < end && !hasExited()) {
    for (const path of [pathA, pathB]) {
      counts.controlChecks++;
      try {
        const cc = await ControlClient.connect(path, { timeoutMs: 2000 });
        await cc.status();
        await cc.close();
      } catch {
        counts.controlFailures++;
      }
    }
    await sleep(1000);
  }
}

async function attack(): Promise<void> {
  while (Date.now() < end && !hasExited()) {
    await episode();
    await sleep(5); // let the daemon see the hang-up: it serves one front-end at a time
  }
}

await sleep(BASELINE_MS);
await Promise.all([attack(), checkControl()]);
const b = await resultB;

// ---- stop and report ---------------------------------------------------------------------------------

const alive = !hasExited();
const t0 = performance.now();
daemon.kill('SIGTERM');
await Promise.race([exitedP, sleep(5000)]);
const stopMs = performance.now() - t0;
const stopped = hasExited();
if (!stopped) daemon.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });

const ms = (x: number): number => Number(x.toFixed(3));
function stats(samples: Array<[number, number]>) {
  const xs = samples.map(([, x]) => x).sort((x, y) => x - y);
  const pct = (p: number): number => xs[Math.min(xs.length - 1, Math.ceil(xs.length * p) - 1)] ?? NaN;
  return { n: xs.length, p50Ms: ms(pct(0.5)), p99Ms: ms(pct(0.99)), maxMs: ms(xs.at(-1) ?? NaN) };
}
const report = {
  seed,
  minutes,
  ...counts,
  bFailures: b.failures,
  bBaseline: stats(b.samples.filter(([at]) => at < attackStart)),
  bUnderAttack: stats(b.samples.filter(([at]) => at >= attackStart)),
  logBytes,
  daemonAliveAtEnd: alive,
  sigtermExitMs: Math.round(stopMs),
  exit: exited,
};
console.log(JSON.stringify(report, null, 2));
const ok = alive && stopped && stopMs < 1000 && b.failures === 0 && counts.controlFailures === 0;
if (!ok) console.error(`soak: FAILED; the daemon's last log lines:\n${logTail}`);
process.exit(ok ? 0 : 1);
