// What watching costs the daemon (issue 10 item 7): `vgpio serve` with 8 devices × 64 lines whose
// inputs toggle at 1 kHz per device (one line per device per millisecond, round robin, through the
// control sockets), and `vgpio bench` measuring GET_VALUE round trips on device 0 — once as is, and
// once with the dashboard open in chromium (all 8 devices, `serve --http`) and a `vgpio watch` on
// every device. Prints both runs and the p99 ratio. A script, not a CI test (timing on a shared box).
//
//   node --import tsx scripts/watch-cost.ts [--iterations 3000] [--rate 1000] [--seconds-settle 2]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

interface Run {
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
      for (const s of sockets) {
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
    const bench = start(
      ['bench', '--socket', sockets[0], '--iterations', String(ITERATIONS), '--json'],
      (s) => (out += s),
    );
    const code = await new Promise<number | null>((r) => bench.child.on('exit', r));
    const togglesPerSecPerDevice = await load.stop();
    if (code !== 0) throw new Error(`vgpio bench failed: ${bench.err()}`);
    const r = JSON.parse(out) as { targets: Array<{ roundTrip: { p50: number; p99: number; max: number } }> };
    const rt = r.targets[0]?.roundTrip;
    if (!rt) throw new Error(`vgpio bench printed no round trip: ${out.slice(0, 300)}`);
    return { p50: rt.p50, p99: rt.p99, max: rt.max, togglesPerSecPerDevice, eventsSeen: events };
  } finally {
    await browser?.close();
    for (const w of watchers) w.kill('SIGINT');
    serve.child.kill('SIGTERM');
    await new Promise((r) => serve.child.on('exit', r));
  }
}

try {
  const plain = await run(false);
  const watched = await run(true);
  const f = (n: number) => n.toFixed(1);
  console.log(
    `${DEVICES} devices × ${LINES} lines, inputs toggling at ${RATE} Hz per device; vgpio bench --iterations ${ITERATIONS} on device 0`,
  );
  console.log(
    'run                          GET_VALUE p50 µs   p99 µs   max µs   toggles/s/device   watch events',
  );
  console.log(
    `without watchers             ${f(plain.p50).padStart(13)} ${f(plain.p99).padStart(8)} ${f(plain.max).padStart(8)} ${f(plain.togglesPerSecPerDevice).padStart(18)}`,
  );
  console.log(
    `dashboard + 8 watchers       ${f(watched.p50).padStart(13)} ${f(watched.p99).padStart(8)} ${f(watched.max).padStart(8)} ${f(watched.togglesPerSecPerDevice).padStart(18)}   ${watched.eventsSeen}`,
  );
  console.log(`p99 ratio (watched / plain): ${(watched.p99 / plain.p99).toFixed(2)}× (limit 2×)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
