// Loopback throughput and latency: the driver and the device model in one process, through the
// real split-ring code (kicks and interrupts are microtasks).
//
//   npm run bench                      table
//   npm run bench -- --json            JSON
//   npm run bench -- --iterations N    operations per scenario (default ~10 s in total)
//
// Scenarios:
//   GET_VALUE, 1 in flight    one line, each request awaited before the next
//   GET_VALUE, 64 in flight   64 lines, one sequential request loop per line, all at once
//   IRQ round trip            EDGE_BOTH on one line: the input toggles once the device holds the
//                             line's eventq buffer, the edge reaches the driver's handler, the
//                             handler returns (ack: the buffer is re-queued), the device holds it
//                             again, next toggle. Latency is toggle → handler.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openLoopbackChip } from '../compose/loopback-chip.ts';
import { Direction, IrqType } from '../protocol/constants.ts';
import { summarize } from './percentiles.ts';

export interface LoopbackResult {
  scenario: string;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50Us: number;
  p99Us: number;
}

export const DEFAULT_ITERATIONS = 350_000;
const now = (): bigint => process.hrtime.bigint();

function result(scenario: string, ops: number, elapsedNs: bigint, latUs: readonly number[]): LoopbackResult {
  const seconds = Number(elapsedNs) / 1e9;
  const s = summarize(latUs);
  return { scenario, ops, seconds, opsPerSecond: ops / seconds, p50Us: s.p50, p99Us: s.p99 };
}

/** `ops` GET_VALUE requests spread over `inFlight` lines, one sequential loop per line. */
async function getValue(inFlight: number, ops: number): Promise<LoopbackResult> {
  const { chip, lines } = await openLoopbackChip({ lines: inFlight });
  const d = chip.driver;
  for (let l = 0; l < inFlight; l++) {
    await d.setDirection(l, Direction.IN);
    lines.setInput(l, (l & 1) as 0 | 1);
  }
  const perLine = Math.floor(ops / inFlight);
  const lat = new Array<number>(perLine * inFlight);
  let bad = 0;
  const start = now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, l) => {
      for (let i = 0; i < perLine; i++) {
        const t = performance.now();
        if ((await d.getValue(l)) !== (l & 1)) bad++;
        lat[l * perLine + i] = (performance.now() - t) * 1000;
      }
    }),
  );
  const elapsed = now() - start;
  await chip.close();
  if (bad > 0) throw new Error(`${bad} GET_VALUE replies had the wrong level`);
  return result(`GET_VALUE, ${inFlight} in flight`, perLine * inFlight, elapsed, lat);
}

/** Toggle → edge at the driver → ack (re-queue) → device holds the buffer → next toggle. */
async function irqRoundTrips(ops: number): Promise<LoopbackResult> {
  const { chip, lines, device } = await openLoopbackChip({ lines: 1 });
  const d = chip.driver;
  await d.setDirection(0, Direction.IN);
  const lat = new Array<number>(ops);
  let level: 0 | 1 = 0;
  let count = 0;
  let toggledAt = 0;
  let waitingForArm = true;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const toggle = () => {
    level = level === 0 ? 1 : 0;
    toggledAt = performance.now();
    lines.setInput(0, level);
  };
  // The device emits 'line' when it takes the buffer (the line is unmasked again).
  device.on('line', (l) => {
    if (l !== 0 || !waitingForArm || !device.snapshot()[0].armed) return;
    waitingForArm = false;
    queueMicrotask(toggle);
  });
  await d.enableIrq(0, IrqType.EDGE_BOTH, () => {
    lat[count] = (performance.now() - toggledAt) * 1000;
    if (++count === ops) finish();
    else waitingForArm = true;
  });
  const start = now();
  await done;
  const elapsed = now() - start;
  const counters = device.snapshot()[0].counters;
  await chip.close();
  if (counters.delivered !== ops || counters.latched !== 0)
    throw new Error(`expected ${ops} live deliveries, got ${JSON.stringify(counters)}`);
  return result('IRQ round trip (edge → handler → ack)', ops, elapsed, lat);
}

/** The three scenarios, `iterations` operations each, after a warm-up (JIT) that is not reported. */
export async function loopbackBench(iterations: number, warmup = 2000): Promise<LoopbackResult[]> {
  if (warmup > 0) {
    await getValue(1, warmup);
    await getValue(64, Math.max(64, warmup));
    await irqRoundTrips(warmup);
  }
  return [await getValue(1, iterations), await getValue(64, iterations), await irqRoundTrips(iterations)];
}

export function formatLoopback(results: readonly LoopbackResult[], iterations: number): string {
  const rows = results.map((r) => [
    r.scenario,
    String(r.ops),
    r.seconds.toFixed(2),
    Math.round(r.opsPerSecond).toLocaleString('en-US'),
    r.p50Us.toFixed(1),
    r.p99Us.toFixed(1),
  ]);
  const head = ['scenario', 'ops', 'time s', 'ops/s', 'p50 µs', 'p99 µs'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [
    `vgpio loopback bench (node ${process.version}, ${iterations} iterations per scenario)`,
    fmt(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(fmt),
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { iterations: { type: 'string', short: 'n' }, json: { type: 'boolean', default: false } },
  });
  const iterations = values.iterations === undefined ? DEFAULT_ITERATIONS : Number(values.iterations);
  if (!Number.isInteger(iterations) || iterations < 64) {
    process.stderr.write(`--iterations must be an integer >= 64 (got ${values.iterations})\n`);
    return 2;
  }
  const results = await loopbackBench(iterations);
  process.stdout.write(
    values.json
      ? JSON.stringify({ node: process.version, iterations, results }, null, 2) + '\n'
      : formatLoopback(results, iterations),
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = await main();
