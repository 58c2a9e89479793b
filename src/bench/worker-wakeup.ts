// How a device worker of `vgpio serve --workers N` should wait for a kick: an eventfd ping-pong
// between a pinging thread and an echoing one, in one process, round trips in µs.
//
//   node --import tsx src/bench/worker-wakeup.ts [--iterations 20000] [--rounds 5] [--json]
//
// The pinger is a worker thread blocking in read(2) on a blocking eventfd, so only the echoing
// side's wake-up path changes between variants:
//   main-uv      the main thread woken through libuv's uv_poll (FdPoller): `vgpio serve` today
//   worker-uv    a worker thread woken through its own loop's uv_poll: `serve --workers N`
//   worker-read  a worker thread blocking in read(2) on its own thread (the kernel's wait, never
//                libuv's threadpool): what a worker that blocks in the kernel would pay
// The variants run in turns (--rounds slices each), so they share the machine's noise.
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FdPoller, closeFd, eventfd, eventfdWrite, readFd } from '../native/index.ts';
import { summarize, type LatencySummary } from './percentiles.ts';

type Variant = 'main-uv' | 'worker-uv' | 'worker-read';
const VARIANTS: readonly Variant[] = ['main-uv', 'worker-uv', 'worker-read'];

type Role =
  | { role: 'pinger'; ping: number; pong: number; iterations: number }
  | { role: 'echo-uv' | 'echo-read'; ping: number; pong: number; iterations: number };

const fromSource = import.meta.url.endsWith('.ts');
const SELF = import.meta.url;

/** A thread of this file running `role`; resolves with what it posts. */
function thread<T>(role: Role): { result: Promise<T>; worker: Worker } {
  const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(SELF)}); })`;
  const worker = new Worker(fromSource ? entry : new URL(SELF), {
    eval: fromSource,
    execArgv: process.execArgv.filter((a) => !a.startsWith('--test')),
    workerData: role,
  });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', (m: T) => resolve(m));
    worker.once('error', reject);
  });
  return { result, worker };
}

const u64 = new BigUint64Array(1);

/** The pinger: blocks in read(2) for each answer; returns the round trips in µs. */
function ping(r: { ping: number; pong: number; iterations: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < r.iterations; i++) {
    const t = process.hrtime.bigint();
    eventfdWrite(r.ping, 1n);
    readFd(r.pong, u64);
    out.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return out;
}

/** The uv_poll echo on this thread's loop; resolves after `iterations` answers. */
function echoUv(r: { ping: number; pong: number; iterations: number }): Promise<void> {
  return new Promise((resolve) => {
    let n = 0;
    const poller = new FdPoller(
      r.ping,
      (err) => {
        if (err) throw err;
        eventfdWrite(r.pong, 1n);
        if (++n === r.iterations) {
          poller.close();
          resolve();
        }
      },
      { drainEventfd: true },
    );
    poller.start(true, false);
  });
}

/** The blocking echo: read(2) on its own thread. */
function echoRead(r: { ping: number; pong: number; iterations: number }): void {
  for (let i = 0; i < r.iterations; i++) {
    readFd(r.ping, u64);
    eventfdWrite(r.pong, 1n);
  }
}

async function slice(variant: Variant, iterations: number): Promise<number[]> {
  // Blocking eventfds: read(2) sleeps in the kernel until the peer writes (uv_poll sets its fd
  // non-blocking itself; the pinger's pong stays blocking).
  const pingFd = eventfd(0, false);
  const pongFd = eventfd(0, false);
  try {
    const fds = { ping: pingFd, pong: pongFd, iterations };
    const echo =
      variant === 'main-uv'
        ? echoUv(fds)
        : thread<null>({ role: variant === 'worker-uv' ? 'echo-uv' : 'echo-read', ...fds }).result;
    // Let the echo side start waiting before the first ping.
    await new Promise((r) => setTimeout(r, variant === 'main-uv' ? 0 : 300));
    const p = thread<number[]>({ role: 'pinger', ...fds });
    const rtts = await p.result;
    await echo;
    return rtts.slice(Math.min(100, rtts.length >> 4)); // the first round trips warm up the JIT
  } finally {
    closeFd(pingFd);
    closeFd(pongFd);
  }
}

export async function workerWakeup(
  iterations: number,
  rounds: number,
): Promise<Record<Variant, LatencySummary>> {
  const samples = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;
  const per = Math.ceil(iterations / rounds);
  for (let r = 0; r < rounds; r++) for (const v of VARIANTS) samples[v].push(...(await slice(v, per)));
  return Object.fromEntries(VARIANTS.map((v) => [v, summarize(samples[v])])) as Record<
    Variant,
    LatencySummary
  >;
}

if (!isMainThread && parentPort) {
  const r = workerData as Role;
  const port = parentPort;
  if (r.role === 'pinger') port.postMessage(ping(r));
  else if (r.role === 'echo-uv') void echoUv(r).then(() => port.postMessage(null));
  else {
    echoRead(r);
    port.postMessage(null);
  }
} else if (process.argv[1] && new URL(SELF).pathname === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
    },
  });
  const r = await workerWakeup(Number(values.iterations), Number(values.rounds));
  if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else
    for (const v of VARIANTS)
      process.stdout.write(
        `${v.padEnd(12)} p50 ${r[v].p50.toFixed(1)} µs  p90 ${r[v].p90.toFixed(1)} µs  p99 ${r[v].p99.toFixed(1)} µs\n`,
      );
  process.exit(0);
}
