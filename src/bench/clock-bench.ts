// Board time under load-free conditions: a 1 kHz `clock` peripheral on a simulated device with the
// GPIO model attached (as `vgpio serve` runs it, no front-end). Reports the period error over the run
// (absolute deadlines: no drift), the lateness of each edge against its deadline (p50/p99 jitter),
// how many deadlines were skipped, and the CPU the daemon process spends on it.
// Usage: node --import tsx src/bench/clock-bench.ts [--seconds S] [--period-ms P] [--json]
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Board } from '../board/board.ts';
import { EARLY_NS } from '../board/board-scheduler.ts';
import type { Clock } from '../board/clock.ts';
import { GpioDevice } from '../device/gpio-device.ts';
import { summarize } from './percentiles.ts';

export interface ClockBenchResult {
  periodMs: number;
  seconds: number;
  rises: number;
  /** Rising edges expected in the run (deadlines), and the ones skipped because a run came a period late. */
  expected: number;
  skipped: number;
  /** Mean measured period minus the nominal one, in µs (drift shows here). */
  periodErrorUs: number;
  /** Lateness of each edge (rising and falling) against its absolute deadline, µs. */
  latenessUs: ReturnType<typeof summarize>;
  /** CPU of this process while the clock ran, as a share of one core (user + system). */
  cpuShare: number;
  /** The same process idle for as long, without the clock. */
  idleCpuShare: number;
  /** The machine's 1-minute load average at the end (lateness depends on it). */
  loadAverage: number;
}

async function cpuShareOver(ms: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, ms));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / (Number(process.hrtime.bigint() - t0) / 1000);
}

export async function runClockBench(opts: { seconds: number; periodMs: number }): Promise<ClockBenchResult> {
  const { seconds, periodMs } = opts;
  const idleCpuShare = await cpuShareOver(Math.min(2000, seconds * 1000));
  const board = Board.create({
    devices: [{ name: 'bench', lines: 1 }],
    peripherals: [{ type: 'clock', name: 'clk', line: 'bench:0', periodMs, running: false }],
  });
  const lines = board.lines('bench');
  // The GPIO model on the lines, as the daemon has it: every edge goes through its IRQ logic.
  new GpioDevice<unknown>(lines);
  const edges: Array<{ level: 0 | 1; ns: bigint }> = [];
  lines.onChange((c) => edges.push({ level: c.level, ns: c.timestampNs }));
  await board.start();
  const clock = board.peripheral('clk') as Clock;
  const start = process.hrtime.bigint();
  clock.run();
  const cpuShare = await cpuShareOver(seconds * 1000);
  const load = loadavg()[0];
  const stop = process.hrtime.bigint();
  clock.halt();
  await board.close();

  const periodNs = BigInt(Math.round(periodMs * 1e6));
  const lateness: number[] = [];
  let skipped = 0;
  const rises: bigint[] = [];
  // Each series (rising at start + k·P, falling at start + P/2 + k·P): an edge stands for the
  // latest deadline at or before it (the scheduler runs up to EARLY_NS early), or the one after the
  // previous edge's if that is later; a deadline with no edge was skipped. The edge halt() makes is
  // not the clock's.
  for (const level of [1, 0] as const) {
    const origin = start + (level === 1 ? 0n : periodNs / 2n);
    let k = -1;
    for (const e of edges) {
      if (e.level !== level || e.ns < origin - EARLY_NS) continue;
      if (e.ns > stop) continue;
      const next = Math.max(k + 1, Number((e.ns - origin + EARLY_NS) / periodNs));
      if (k >= 0 && level === 1) skipped += next - k - 1;
      k = next;
      lateness.push(Number(e.ns - origin - BigInt(k) * periodNs) / 1000);
      if (level === 1) rises.push(e.ns);
    }
  }
  const expected = Math.floor((seconds * 1000) / periodMs);
  const meanPeriodNs =
    rises.length > 1 ? Number(rises.at(-1)! - rises[0]) / (rises.length - 1 + skipped) : NaN;
  return {
    periodMs,
    seconds,
    rises: rises.length,
    expected,
    skipped,
    periodErrorUs: (meanPeriodNs - Number(periodNs)) / 1000,
    latenessUs: summarize(lateness),
    cpuShare,
    idleCpuShare,
    loadAverage: load,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      'period-ms': { type: 'string', default: '1' },
      json: { type: 'boolean' },
    },
  });
  const r = await runClockBench({ seconds: Number(values.seconds), periodMs: Number(values['period-ms']) });
  if (values.json) console.log(JSON.stringify(r));
  else {
    const l = r.latenessUs;
    console.log(
      `clock ${1000 / r.periodMs} Hz for ${r.seconds} s: ${r.rises} rising edges of ${r.expected} deadlines (${r.skipped} skipped)`,
    );
    console.log(`period error ${r.periodErrorUs.toFixed(3)} µs (mean over the run)`);
    console.log(
      `edge lateness vs absolute deadline: p50 ${l.p50.toFixed(0)} µs, p99 ${l.p99.toFixed(0)} µs, max ${l.max.toFixed(0)} µs (n=${l.n})`,
    );
    console.log(
      `CPU: ${(r.cpuShare * 100).toFixed(2)} % of one core with the clock, ${(r.idleCpuShare * 100).toFixed(2)} % idle`,
    );
    console.log(`(load average ${r.loadAverage.toFixed(2)} on ${availableParallelism()} cores)`);
  }
}
