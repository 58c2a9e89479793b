// Many devices in one daemon: idle wake-ups and RSS with front-ends connected, then aggregate
// GET_VALUE throughput and latency with every device driven at once from several processes.
//
//   node --import tsx src/bench/scale-bench.ts [--devices 64] [--lines 64] [--clients 2]
//        [--daemons 1] [--workers 0] [--frontend node|c] [--requests 20000] [--in-flight 64]
//        [--seconds 3] [--idle-seconds 10] [--settle-seconds 20] [--json] [-- serve args]
//
// The idle window starts --settle-seconds after the front-ends connected: V8's background work
// after the set-up (GC, compilation) wakes threads for a while; a served idle device does not.
//
// --daemons N splits the devices over N daemon processes (device i in daemon i mod N): the
// one-core-per-process bound measured against the same devices in one process. --workers N
// serves each daemon's devices from N worker threads (`vgpio serve --workers N`).
//
// --frontend c drives each device from its own C front-end (native/bench-frontend.c, built with
// the addon), --requests GET_VALUEs per device, all at once, so that the front-ends are not what
// limits the aggregate rate; latencies are then the C front-ends' own (scale-client.ts).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { summarize, type LatencySummary } from './percentiles.ts';
import { cpuNsOf, rssOf, wakeupsOf } from './process-stats.ts';

const fromSource = import.meta.url.endsWith('.ts');
const ext = fromSource ? 'ts' : 'js';
const here = (f: string) => fileURLToPath(new URL(`${f}.${ext}`, import.meta.url));
const execArgv = fromSource ? ['--import', 'tsx'] : [];

export interface ScaleOptions {
  devices: number;
  lines: number;
  clients: number;
  daemons: number;
  /** `vgpio serve --workers N` (0: every device on the daemon's main thread). */
  workers: number;
  frontend: 'node' | 'c';
  /** GET_VALUEs per device with C front-ends (Node front-ends run for `seconds`). */
  requests: number;
  inFlight: number;
  seconds: number;
  idleSeconds: number;
  /** Wait after the front-ends connected, before the idle window (V8's background work settles). */
  settleSeconds: number;
  serveArgs: string[];
}

export interface ScaleResult {
  options: ScaleOptions;
  daemonPids: number[];
  /** Summed over the daemons. */
  rssBytes: { started: number | null; connected: number | null; afterLoad: number | null };
  idle: { seconds: number; daemonWakeupsPerSec: number; clientWakeupsPerSec: number };
  load: {
    requests: number;
    requestsPerSec: number;
    latency: LatencySummary;
    daemonCpuUsPerRequest: number | null;
    /**
     * The daemons' busiest threads during the load: each one's CPU time over the wall time (1 = one
     * CPU all the time), highest first, at most 4. A thread near 1 is what limits the rate.
     */
    busiestThreads: number[];
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function message<T>(c: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      c.off('message', on);
      resolve(m[key] as T);
    };
    c.on('message', on);
    c.once('exit', (code) => reject(new Error(`scale client exited ${code}`)));
  });
}

export async function scaleBench(o: ScaleOptions): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-scale-'));
  const sockets = Array.from({ length: o.devices }, (_, i) => join(dir, `d${i}.sock`));
  const cli = fileURLToPath(new URL(`../cli/main.${ext}`, import.meta.url));
  const daemons: ChildProcess[] = [];
  for (let d = 0; d < o.daemons; d++) {
    const config = join(dir, `devices-${d}.json`);
    const mine = sockets.filter((_, i) => i % o.daemons === d);
    writeFileSync(config, JSON.stringify({ devices: mine.map((socket) => ({ socket, lines: o.lines })) }));
    daemons.push(
      spawn(
        process.execPath,
        [
          ...execArgv,
          cli,
          'serve',
          '--config',
          config,
          ...(o.workers > 0 ? ['--workers', String(o.workers)] : []),
          ...o.serveArgs,
        ],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      ),
    );
  }
  const clients: ChildProcess[] = [];
  try {
    const deadline = Date.now() + 60_000;
    while (!sockets.every((s) => existsSync(s))) {
      if (daemons.some((d) => d.exitCode !== null) || Date.now() > deadline)
        throw new Error('the daemon did not start');
      await sleep(100);
    }
    await sleep(1000);
    const pids = daemons.map((d) => d.pid as number);
    const sum = (f: (pid: number) => number | null) =>
      pids.reduce<number | null>((n, p) => {
        const v = f(p);
        return n === null || v === null ? null : n + v;
      }, 0);
    const cpuNs = () =>
      sum((p) => {
        const ns = cpuNsOf(p);
        return ns === null ? null : Number(ns);
      });
    const started = sum(rssOf);
    for (let c = 0; c < o.clients; c++) {
      const mine = sockets.filter((_, i) => i % o.clients === c);
      if (mine.length === 0) continue;
      const child = fork(here('./scale-client'), [], {
        execArgv,
        env: { ...process.env, VGPIO_SCALE_SOCKETS: mine.join(','), VGPIO_SCALE_FRONTEND: o.frontend },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      clients.push(child);
    }
    await Promise.all(clients.map((c) => message(c, 'ready')));
    await sleep(o.settleSeconds * 1000);

    // The front-end processes: the scale clients and, with --frontend c, their C front-ends.
    const clientPids = [
      ...clients.map((c) => c.pid as number),
      ...clients.flatMap((c) => childrenOf(c.pid as number)),
    ];
    const clientWakeups = () => clientPids.reduce((n, p) => n + (wakeupsOf(p) ?? 0), 0);
    const d0 = sum(wakeupsOf) ?? NaN;
    const c0 = clientWakeups();
    await sleep(o.idleSeconds * 1000);
    const idle = {
      seconds: o.idleSeconds,
      daemonWakeupsPerSec: ((sum(wakeupsOf) ?? NaN) - d0) / o.idleSeconds,
      clientWakeupsPerSec: (clientWakeups() - c0) / o.idleSeconds,
    };
    const connected = sum(rssOf);

    const threads0 = threadCpuNs(pids);
    const cpu0 = cpuNs();
    const t0 = performance.now();
    const results = await Promise.all(
      clients.map((c) => {
        const r = message<{ requests: number; samplesUs: number[]; wallNs?: number }>(c, 'result');
        c.send({ run: o.seconds * 1000, inFlight: o.inFlight, requests: o.requests });
        return r;
      }),
    );
    const measured = (performance.now() - t0) / 1000;
    // C front-ends time their own runs (all devices at once): the rate is over the longest of those
    // windows, not over this process's wait, which includes sending their latencies here.
    const walls = results.map((r) => r.wallNs).filter((w): w is number => w !== undefined);
    const elapsed = walls.length === results.length ? Math.max(...walls) / 1e9 : measured;
    const cpu1 = cpuNs();
    const threads1 = threadCpuNs(pids);
    const busiestThreads = [...threads1]
      .map(([tid, ns]) => (ns - (threads0.get(tid) ?? 0)) / 1e9 / elapsed)
      .sort((a, b) => b - a)
      .slice(0, 4);
    const requests = results.reduce((n, r) => n + r.requests, 0);
    return {
      options: o,
      daemonPids: pids,
      rssBytes: { started, connected, afterLoad: sum(rssOf) },
      idle,
      load: {
        requests,
        requestsPerSec: Math.round(requests / elapsed),
        latency: summarize(results.flatMap((r) => r.samplesUs)),
        daemonCpuUsPerRequest: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / 1000 / requests,
        busiestThreads,
      },
    };
  } finally {
    for (const c of clients) c.kill();
    for (const d of daemons) d.kill('SIGTERM');
    await Promise.all(
      daemons.map((d) => new Promise((r) => (d.exitCode !== null ? r(null) : d.once('exit', r)))),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU time per thread of these processes, in ns (/proc/PID/task/TID/schedstat, first field). */
function threadCpuNs(pids: readonly number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids)
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`))
        out.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the daemon is gone
    }
  return out;
}

/** The child processes of `pid` (/proc/PID/task/PID/children). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

export function formatScale(r: ScaleResult): string {
  const mb = (b: number | null) => (b === null ? '-' : `${(b / 1048576).toFixed(1)} MB`);
  const o = r.options;
  const l = r.load.latency;
  return [
    `vgpio scale bench: ${o.devices} devices × ${o.lines} lines in ${o.daemons} daemon(s)${o.workers ? ` with ${o.workers} workers each` : ''}, ${o.frontend === 'c' ? `a C front-end per device (from ${o.clients} processes)` : `${o.clients} front-end processes`}, ${o.inFlight} lines in flight per device${o.serveArgs.length ? `, serve ${o.serveArgs.join(' ')}` : ''}`,
    `RSS (daemons summed): started ${mb(r.rssBytes.started)}, front-ends connected ${mb(r.rssBytes.connected)}, after load ${mb(r.rssBytes.afterLoad)}`,
    `idle ${r.idle.seconds} s with front-ends connected (after ${o.settleSeconds} s): daemon ${r.idle.daemonWakeupsPerSec.toFixed(1)} wake-ups/s, front-ends ${r.idle.clientWakeupsPerSec.toFixed(1)} wake-ups/s`,
    `load ${o.frontend === 'c' ? `${o.requests} requests per device` : `${o.seconds} s`}: ${r.load.requests} requests, ${r.load.requestsPerSec} requests/s; latency p50 ${l.p50.toFixed(1)} µs, p99 ${l.p99.toFixed(1)} µs, max ${l.max.toFixed(1)} µs; daemon CPU ${r.load.daemonCpuUsPerRequest?.toFixed(2) ?? '-'} µs/request; busiest daemon threads ${r.load.busiestThreads.map((x) => `${Math.round(x * 100)}%`).join(' ') || '-'} of a CPU`,
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      devices: { type: 'string', default: '64' },
      lines: { type: 'string', default: '64' },
      clients: { type: 'string', default: '2' },
      daemons: { type: 'string', default: '1' },
      workers: { type: 'string', default: '0' },
      frontend: { type: 'string', default: 'node' },
      requests: { type: 'string', default: '20000' },
      'in-flight': { type: 'string', default: '64' },
      seconds: { type: 'string', default: '3' },
      'idle-seconds': { type: 'string', default: '10' },
      'settle-seconds': { type: 'string', default: '20' },
      json: { type: 'boolean', default: false },
    },
  });
  const n = (k: keyof typeof values) => {
    const v = Number(values[k]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k} must be a positive number`);
    return v;
  };
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0) throw new Error('--workers must be 0 or more');
  if (values.frontend !== 'node' && values.frontend !== 'c') throw new Error('--frontend must be node or c');
  const r = await scaleBench({
    devices: n('devices'),
    lines: n('lines'),
    clients: n('clients'),
    daemons: n('daemons'),
    workers,
    frontend: values.frontend,
    requests: n('requests'),
    inFlight: n('in-flight'),
    seconds: n('seconds'),
    idleSeconds: n('idle-seconds'),
    settleSeconds: n('settle-seconds'),
    serveArgs: positionals,
  });
  process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : formatScale(r));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = await main();
