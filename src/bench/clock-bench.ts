// Board time: a `clock` peripheral (1 kHz by default) on a simulated device with the GPIO model
// attached (as `vgpio serve` runs it, no front-end), woken by Node timers or the addon's timerfd.
// Reports rising edges delivered against the deadlines of the run and how many were skipped, the
// period error over the run (absolute deadlines: no drift), the lateness of each edge against its
// deadline (p50/p99 jitter), the CPU the process spends on it, and the machine's load average.
// Usage: node --import tsx src/bench/clock-bench.ts [--seconds S] [--period-ms P] [--warmup-seconds W]
//          [--timer node|timerfd] [--compare] [--reference] [--json]
//   --timer           the wake source (default: timerfd when the addon loads, else node)
//   --compare         run both sources one after the other, node first
//   --warmup-seconds  the clock runs this long before the measured S seconds (default 1: V8 has
//                     compiled the edge path by then, as in a daemon that has run for a while)
//   --reference       also measure the wake-ups alone, the floor of the clock's cost: a timerfd
//                     re-armed every half period by a bare FdPoller callback (no scheduler, no
//                     board), and the same loop in C (native/timerfd-floor.c, built beside the
//                     addon); with --json the output is { results, wakeOnlyCpuShare, cFloorCpuShare }
import { benchTool } from './bench-tool.ts';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Board } from '../board/board.ts';
import { nodeBoardTimer, type BoardTimerFactory } from '../board/board-timer.ts';
import type { Clock } from '../board/clock.ts';
import { GpioDevice } from '../device/gpio-device.ts';
import { summarize } from './percentiles.ts';

export type ClockBenchTimer = 'node' | 'timerfd';

export interface ClockBenchResult {
  timer: ClockBenchTimer;
  periodMs: number;
  seconds: number;
  rises: number;
  /** Rising edges expected in the run (deadlines), and the ones skipped because a run came a period late. */
  expected: number;
  skipped: number;
  /** Mean measured period minus the nominal one, in µs (drift shows here). */
  periodErrorUs: number;
  /** Lateness of each edge (rising and falling) against its absolute deadline, µs (negative: early). */
  latenessUs: ReturnType<typeof summarize>;
  /** How early the source may run a callback, µs. */
  earlyUs: number;
  /** CPU of this process while the clock ran, as a share of one core (user + system). */
  cpuShare: number;
  /** The same process idle for as long, without the clock. */
  idleCpuShare: number;
  /** The machine's 1-minute load average at the end (lateness depends on it). */
  loadAverage: number;
}

/** The wake source by name; null when the timerfd is asked for and the addon does not load. */
export async function clockBenchTimer(kind: ClockBenchTimer): Promise<BoardTimerFactory | null> {
  if (kind === 'node') return nodeBoardTimer;
  try {
    const { timerfdBoardTimer } = await import('../board/board-timerfd.ts');
    return timerfdBoardTimer((m) => console.error(m));
  } catch {
    return null;
  }
}

async function cpuShareOver(ms: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, ms));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / (Number(process.hrtime.bigint() - t0) / 1000);
}

/** The CPU share of this process idle for `ms` (the baseline the clock's share compares with). */
export const idleCpuShare = (ms: number): Promise<number> => cpuShareOver(ms);

/** The C loop of the same wake-ups, built by node-gyp beside the addon (target vgpio_timerfd_floor). */
export const cFloorProgram: string = benchTool('vgpio_timerfd_floor');

/** The CPU share of the wake-ups in C (native/timerfd-floor.c); null when it is not built. */
export async function cFloorCpuShare(opts: { seconds: number; periodMs: number }): Promise<number | null> {
  if (!existsSync(cFloorProgram)) return null;
  const halfNs = String(Math.round(opts.periodMs * 5e5));
  const out = await new Promise<string>((resolve, reject) =>
    execFile(cFloorProgram, [String(opts.seconds), halfNs], (e, stdout) => (e ? reject(e) : resolve(stdout))),
  );
  const m = /^wakes \d+ cpu ([\d.]+)$/m.exec(out);
  if (!m) throw new Error(`vgpio_timerfd_floor printed ${JSON.stringify(out)}`);
  return Number(m[1]);
}

/**
 * The CPU share of the wake-ups alone: a timerfd armed at start + k·P/2 from its own poll callback
 * for `seconds`, nothing else, i.e. what 2 wake-ups per period cost this process's event loop.
 * Null without the addon.
 */
export async function wakeOnlyCpuShare(opts: { seconds: number; periodMs: number }): Promise<number | null> {
  let native: typeof import('../native/index.ts');
  try {
    native = await import('../native/index.ts');
  } catch {
    return null;
  }
  const { FdPoller, closeFd, timerfdArm, timerfdCreate } = native;
  const fd = timerfdCreate();
  const halfNs = BigInt(Math.round(opts.periodMs * 5e5));
  let deadline = process.hrtime.bigint() + halfNs;
  let running = true;
  const poller = new FdPoller(fd, () => {
    if (!running) return;
    deadline += halfNs;
    timerfdArm(fd, deadline);
  });
  poller.start(true, false);
  timerfdArm(fd, deadline);
  const share = await cpuShareOver(opts.seconds * 1000);
  running = false;
  poller.close();
  closeFd(fd);
  return share;
}

export async function runClockBench(opts: {
  seconds: number;
  periodMs: number;
  /** The clock runs this long before the measured window (edges, CPU); default 0. */
  warmupSeconds?: number;
  timer?: ClockBenchTimer;
  /** Measured before, if known (--compare measures it once). */
  idleCpuShare?: number;
}): Promise<ClockBenchResult> {
  const { seconds, periodMs } = opts;
  const kind = opts.timer ?? 'node';
  const factory = await clockBenchTimer(kind);
  if (!factory) throw new Error('clock bench: the timerfd needs the native addon, which did not load');
  const idle = opts.idleCpuShare ?? (await cpuShareOver(Math.min(2000, seconds * 1000)));
  const board = Board.create(
    {
      devices: [{ name: 'bench', lines: 1 }],
      peripherals: [{ type: 'clock', name: 'clk', line: 'bench:0', periodMs, running: false }],
    },
    undefined,
    factory,
  );
  const earlyNs = board.scheduler.earlyNs;
  const lines = board.lines('bench');
  // The GPIO model on the lines, as the daemon has it: every edge goes through its IRQ logic.
  new GpioDevice<unknown>(lines);
  const edges: Array<{ level: 0 | 1; ns: bigint }> = [];
  lines.onChange((c) => edges.push({ level: c.level, ns: c.timestampNs }));
  await board.start();
  const clock = board.peripheral('clk') as Clock;
  const start = process.hrtime.bigint();
  clock.run();
  if (opts.warmupSeconds) await new Promise((r) => setTimeout(r, opts.warmupSeconds! * 1000));
  const from = process.hrtime.bigint();
  const cpuShare = await cpuShareOver(seconds * 1000);
  const load = loadavg()[0];
  const stop = process.hrtime.bigint();
  clock.halt();
  await board.close();

  const periodNs = BigInt(Math.round(periodMs * 1e6));
  const lateness: number[] = [];
  let skipped = 0;
  const rises: bigint[] = [];
  // Each series (rising at start + k·P, falling at start + P/2 + k·P): which deadline an edge stands
  // for follows the scheduler's own rule for a repeating callback: after a run late by `late`, the
  // next deadline is the one after, or, when the run was more than a period late, the first one not
  // yet past (the ones between are skipped). That deadline is never later than the latest one the
  // edge could stand for (a callback runs at most earlyNs early), nor earlier than the one after the
  // previous edge's. A deadline with no edge was skipped. Only edges of the measured window count;
  // the edge halt() makes is not the clock's.
  for (const level of [1, 0] as const) {
    const origin = start + (level === 1 ? 0n : periodNs / 2n);
    let k = -1;
    let expected = 0;
    for (const e of edges) {
      if (e.level !== level || e.ns < origin - earlyNs) continue;
      if (e.ns > stop) continue;
      const latest = Number((e.ns - origin + earlyNs) / periodNs);
      const next = Math.max(k + 1, Math.min(expected, latest));
      const counted = e.ns >= from;
      if (k >= 0 && level === 1 && counted) skipped += next - k - 1;
      k = next;
      const lateNs = e.ns - origin - BigInt(k) * periodNs;
      expected = k + 1 + (lateNs > periodNs ? Number(lateNs / periodNs) : 0);
      if (!counted) continue;
      lateness.push(Number(lateNs) / 1000);
      if (level === 1) rises.push(e.ns);
    }
  }
  // Rising deadlines in the window: start + k·P for from - earlyNs <= start + k·P <= stop.
  const firstK = (from - earlyNs - start + periodNs - 1n) / periodNs;
  const expected = Number((stop - start) / periodNs - firstK + 1n);
  const meanPeriodNs =
    rises.length > 1 ? Number(rises.at(-1)! - rises[0]) / (rises.length - 1 + skipped) : NaN;
  return {
    timer: board.scheduler.timerKind === 'timerfd' ? 'timerfd' : 'node',
    periodMs,
    seconds,
    rises: rises.length,
    expected,
    skipped,
    periodErrorUs: (meanPeriodNs - Number(periodNs)) / 1000,
    latenessUs: summarize(lateness),
    earlyUs: Number(earlyNs) / 1000,
    cpuShare,
    idleCpuShare: idle,
    loadAverage: load,
  };
}

function report(r: ClockBenchResult): string {
  const l = r.latenessUs;
  return [
    `clock ${1000 / r.periodMs} Hz, ${r.seconds} s measured, on ${r.timer} timers: ${r.rises} rising edges of ${r.expected} deadlines (${r.skipped} skipped)`,
    `  period error ${r.periodErrorUs.toFixed(3)} µs (mean over the run)`,
    `  edge lateness vs absolute deadline: p50 ${l.p50.toFixed(0)} µs, p99 ${l.p99.toFixed(0)} µs, max ${l.max.toFixed(0)} µs (n=${l.n}; at most ${r.earlyUs} µs early)`,
    `  CPU: ${(r.cpuShare * 100).toFixed(2)} % of one core with the clock, ${(r.idleCpuShare * 100).toFixed(2)} % idle`,
    `  (load average ${r.loadAverage.toFixed(2)} on ${availableParallelism()} cores)`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      'period-ms': { type: 'string', default: '1' },
      'warmup-seconds': { type: 'string', default: '1' },
      reference: { type: 'boolean' },
      timer: { type: 'string' },
      compare: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const seconds = Number(values.seconds);
  const periodMs = Number(values['period-ms']);
  const warmupSeconds = Number(values['warmup-seconds']);
  if (!(seconds > 0) || !(periodMs > 0) || !(warmupSeconds >= 0)) {
    console.error('clock bench: --seconds and --period-ms must be numbers > 0, --warmup-seconds ≥ 0');
    process.exit(2);
  }
  if (values.timer !== undefined && values.timer !== 'node' && values.timer !== 'timerfd') {
    console.error(`clock bench: --timer must be node or timerfd, not ${JSON.stringify(values.timer)}`);
    process.exit(2);
  }
  const fallback: ClockBenchTimer = (await clockBenchTimer('timerfd')) ? 'timerfd' : 'node';
  const timers: ClockBenchTimer[] = values.compare
    ? ['node', 'timerfd']
    : [(values.timer as ClockBenchTimer | undefined) ?? fallback];
  const idle = await idleCpuShare(Math.min(2000, seconds * 1000));
  const results: ClockBenchResult[] = [];
  for (const timer of timers) {
    const r = await runClockBench({ seconds, periodMs, warmupSeconds, timer, idleCpuShare: idle });
    results.push(r);
    if (!values.json) console.log(report(r));
  }
  if (values.reference) {
    const node = await wakeOnlyCpuShare({ seconds, periodMs });
    const c = await cFloorCpuShare({ seconds, periodMs });
    const pct = (x: number | null, missing: string) => (x === null ? missing : `${(x * 100).toFixed(2)} %`);
    if (values.json) console.log(JSON.stringify({ results, wakeOnlyCpuShare: node, cFloorCpuShare: c }));
    else
      console.log(
        `reference: the ${(2000 / periodMs).toFixed(0)} timerfd wake-ups a second alone cost ` +
          `${pct(node, 'n/a (no addon)')} of one core in Node (no scheduler, no board), ` +
          `${pct(c, 'n/a (vgpio_timerfd_floor not built)')} in C`,
      );
  } else if (values.json) console.log(JSON.stringify(values.compare ? results : results[0]));
}
