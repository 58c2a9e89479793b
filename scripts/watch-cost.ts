// What watching costs the daemon (issue 10 item 7): `vgpio serve` with 8 devices × 64 lines whose
// inputs toggle at 1 kHz per device (one line per device per millisecond, round robin, through the
// control sockets), and `vgpio bench` measuring GET_VALUE round trips on device 0 — once as is, and
// once with the dashboard open in chromium (all 8 devices, `serve --http`) and `vgpio watch` on the
// first --watchers devices (default 1). Prints both runs and the p99 ratio. A script, not a CI test (timing on a shared box).
//
//   node --import tsx scripts/watch-cost.ts [--iterations 3000] [--rate 1000] [--watchers 1] [--rounds 3] [--seconds-settle 2]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { ControlClient } from '../src/control/control-client.ts';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '3000' },
    rate: { type: 'string', default: '1000' },
    'seconds-settle': { type: 'string', default: '2' },
    watchers: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
  },
});
const DEVICES = 8;
const LINES = 64;
const ITERATIONS = Number(values.iterations);
const RATE = Number(values.rate);
const ROOT = join(import.meta.dirname, '..');
const CLI = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
const dir = mkdtempSync(join(tmpdir(), 'vgpio-cost-'));
const sockets = Array.from({ length: DEVICES }, (_, i) => join(dir, `dev${i}.sock`));
const config = join(dir, 'board.json');
writeFileSync(config, JSON.stringify({ devices: sockets.map((socket) => ({ socket, lines: LINES })) }));

function start(args: string[], onStdout?: (s: string) => void): { child: ChildProcess; err: () => string } {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d) => (err += String(d)));
  child.stdout?.on('data', (d) => onStdout?.(String(d)));
  return { child, err: () => err };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Toggles one input line per device per tick, `rate` ticks a second, pipelined. */
async function toggler(rate: number): Promise<{ stop: () => Promise<number> }> {
  const clients = await Promise.all(sockets.map((s) => ControlClient.connect(s)));
  let sent = 0;
  let running = true;
  const level: Array<Array<0 | 1>> = sockets.map(() => new Array<0 | 1>(LINES).fill(0));
  const t0 = performance.now();
  const loop = (async () => {
    while (running) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      while (sent < due) {
        const line = sent % LINES;
        clients.forEach((c, d) => {
          level[d][line] = level[d][line] ? 0 : 1;
          void c.request({ op: 'input', line, value: level[d][line] });
        });
        sent++;
      }
      await sleep(1);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      const perSec = sent / ((performance.now() - t0) / 1000);
      clients.forEach((c) => c.close());
      return perSec;
    },
  };
}

/** CPU time (user + system, ms) a process has used: /proc/PID/stat fields 14 and 15. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

interface Run {
  /** The daemon's CPU use while bench ran, in ms per second of wall time. */
  daemonCpuMsPerSec: number;
  p50: number;
  p99: number;
  max: number;
  togglesPerSecPerDevice: number;
  eventsSeen: number;
}

async function run(watched: boolean): Promise<Run> {
  const serveArgs = ['serve', '--config', config, '--log-level', 'warn'];
  if (watched) serveArgs.push('--http', '127.0.0.1:0', '--log-level', 'info');
  const serve = start(serveArgs);
  const watchers: ChildProcess[] = [];
  let browser: Awaited<ReturnType<typeof chromium.launch>> | null = null;
  let events = 0;
  try {
    await until('the daemon', () => sockets.every((s) => existsSync(`${s}.ctl`)));
    await sleep(300);
    if (watched) {
      await until('the dashboard URL', () => /dashboard listening url=(\S+)/.test(serve.err()));
      const url = /dashboard listening url=(\S+)/.exec(serve.err())?.[1] ?? '';
      for (const s of sockets.slice(0, Number(values.watchers))) {
        const w = start(['watch', s, '--json'], (out) => {
          for (const ch of out) if (ch === '\n') events++;
        });
        watchers.push(w.child);
      }
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
        ],
      });
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(url);
      await page.locator('#conn.live').waitFor();
    }
    const load = await toggler(RATE);
    await sleep(Number(values['seconds-settle']) * 1000);
    let out = '';
    const cpu0 = cpuMs(serve.child.pid ?? 0);
    const wall0 = performance.now();
    const bench = start(
      ['bench', '--socket', sockets[0], '--iterations', String(ITERATIONS), '--json'],
      (s) => (out += s),
    );
    const code = await new Promise<number | null>((r) => bench.child.on('exit', r));
    const daemonCpuMsPerSec = ((cpuMs(serve.child.pid ?? 0) - cpu0) * 1000) / (performance.now() - wall0);
    const togglesPerSecPerDevice = await load.stop();
    if (code !== 0) throw new Error(`vgpio bench failed: ${bench.err()}`);
    const r = JSON.parse(out) as { targets: Array<{ roundTrip: { p50: number; p99: number; max: number } }> };
    const rt = r.targets[0]?.roundTrip;
    if (!rt) throw new Error(`vgpio bench printed no round trip: ${out.slice(0, 300)}`);
    return {
      p50: rt.p50,
      p99: rt.p99,
      max: rt.max,
      togglesPerSecPerDevice,
      eventsSeen: events,
      daemonCpuMsPerSec,
    };
  } finally {
    await browser?.close();
    for (const w of watchers) w.kill('SIGINT');
    serve.child.kill('SIGTERM');
    await new Promise((r) => serve.child.on('exit', r));
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  // Alternate the two runs, so that a burst of load elsewhere on the machine hits both alike.
  const rounds = Number(values.rounds);
  const plain: Run[] = [];
  const watched: Run[] = [];
  for (let i = 0; i < rounds; i++) {
    plain.push(await run(false));
    watched.push(await run(true));
  }
  const f = (n: number) => n.toFixed(1);
  const row = (name: string, r: Run) =>
    [
      name.padEnd(26),
      f(r.p50).padStart(8),
      f(r.p99).padStart(9),
      f(r.max).padStart(10),
      f(r.togglesPerSecPerDevice).padStart(10),
      f(r.daemonCpuMsPerSec).padStart(12),
      String(r.eventsSeen).padStart(8),
    ].join(' ');
  console.log(
    `${DEVICES} devices × ${LINES} lines, inputs toggling at ${RATE} Hz per device; ` +
      `vgpio bench --iterations ${ITERATIONS} on device 0; ${rounds} round(s), alternating`,
  );
  console.log('run                         p50 µs    p99 µs     max µs  toggles/s  daemon ms/s  events');
  plain.forEach((r, i) => console.log(row(`without watchers #${i + 1}`, r)));
  watched.forEach((r, i) => console.log(row(`dashboard + ${values.watchers} watcher #${i + 1}`, r)));
  const p99 = (rs: Run[]) => median(rs.map((r) => r.p99));
  const cpu = (rs: Run[]) => median(rs.map((r) => r.daemonCpuMsPerSec));
  console.log(
    `median GET_VALUE p99: ${f(p99(plain))} µs without, ${f(p99(watched))} µs with: ` +
      `${(p99(watched) / p99(plain)).toFixed(2)}× (limit 2×); daemon CPU ${f(cpu(plain))} → ${f(cpu(watched))} ms/s`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
