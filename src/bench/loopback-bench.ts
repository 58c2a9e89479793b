// Loopback throughput and latency: the driver and the device model in one process, through the
// real split-ring code (kicks and interrupts are microtasks).
//
//   npm run bench                        table
//   npm run bench -- --json              JSON
//   npm run bench -- --iterations N      operations per scenario (default ~10 s in total)
//   npm run bench -- --only promise,irq  scenarios whose name contains one of the words
//
// Scenarios (N = 1, 8, 64 lines, each its own loop of requests, all at once):
//   GET_VALUE, N in flight (await)      `await driver.getValue(line)` in a loop per line
//   GET_VALUE, N in flight (send)       driver.send() with one handler: each reply sends the
//                                       line's next request (no promise per request); one
//                                       request in 8 is timed (reading the clock costs more)
//   getValues of 64 lines, batched      `await driver.getValues(lines)` in a loop: one promise
//                                       and one kick per 64 requests
//   IRQ round trip                      EDGE_BOTH on one line: the input toggles once the device holds the
//                                       line's eventq buffer, the edge reaches the driver's handler, the
//                                       handler returns (ack: the buffer is re-queued), the device holds it
//                                       again, next toggle. Latency is toggle → handler.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openLoopbackChip } from '../compose/loopback-chip.ts';
import type { ReplyHandler } from '../driver/gpio-driver.ts';
import { Direction, IrqType, MessageType } from '../protocol/constants.ts';
import { summarize } from './percentiles.ts';

export interface LoopbackResult {
  scenario: string;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  /** CPU time of the whole process (driver and device) per operation. */
  cpuUsPerOp: number;
  p50Us: number;
  p99Us: number;
}

export const DEFAULT_ITERATIONS = 350_000;

interface Clock {
  ns: bigint;
  cpu: NodeJS.CpuUsage;
}
/** Wall time and this process's CPU time (user + system), which a loaded machine distorts less. */
const clock = (): Clock => ({ ns: process.hrtime.bigint(), cpu: process.cpuUsage() });
const lap = (c: Clock): { ns: bigint; cpuUs: number } => {
  const cpu = process.cpuUsage(c.cpu);
  return { ns: process.hrtime.bigint() - c.ns, cpuUs: cpu.user + cpu.system };
};

function result(
  scenario: string,
  ops: number,
  elapsed: { ns: bigint; cpuUs: number },
  latUs: readonly number[],
): LoopbackResult {
  const seconds = Number(elapsed.ns) / 1e9;
  const s = summarize(latUs);
  return {
    scenario,
    ops,
    seconds,
    opsPerSecond: ops / seconds,
    cpuUsPerOp: elapsed.cpuUs / ops,
    p50Us: s.p50,
    p99Us: s.p99,
  };
}

async function openInputs(count: number) {
  const lb = await openLoopbackChip({ lines: count });
  for (let l = 0; l < count; l++) {
    await lb.chip.driver.setDirection(l, Direction.IN);
    lb.lines.setInput(l, (l & 1) as 0 | 1);
  }
  return lb;
}

/** `ops` GET_VALUE requests spread over `inFlight` lines, one sequential `await` loop per line. */
async function getValue(inFlight: number, ops: number): Promise<LoopbackResult> {
  const { chip } = await openInputs(inFlight);
  const d = chip.driver;
  const perLine = Math.floor(ops / inFlight);
  const lat = new Array<number>(perLine * inFlight).fill(0);
  let bad = 0;
  const start = clock();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, l) => {
      for (let i = 0; i < perLine; i++) {
        const t = performance.now();
        if ((await d.getValue(l)) !== (l & 1)) bad++;
        lat[l * perLine + i] = (performance.now() - t) * 1000;
      }
    }),
  );
  const elapsed = lap(start);
  await chip.close();
  if (bad > 0) throw new Error(`${bad} GET_VALUE replies had the wrong level`);
  return result(`GET_VALUE, ${inFlight} in flight (await)`, perLine * inFlight, elapsed, lat);
}

/** One request in SAMPLE is timed in the send() scenarios: the clock read would cost more than the request. */
const SAMPLE = 8;

/** The same load through driver.send(): a reply's handler sends that line's next request. */
async function getValueSend(inFlight: number, ops: number): Promise<LoopbackResult> {
  const { chip } = await openInputs(inFlight);
  const d = chip.driver;
  const perLine = Math.floor(ops / inFlight);
  const samplesPerLine = Math.ceil(perLine / SAMPLE);
  const lat = new Array<number>(samplesPerLine * inFlight).fill(0);
  const sent = new Float64Array(inFlight);
  const count = new Int32Array(inFlight);
  let bad = 0;
  let running = inFlight;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const handler: ReplyHandler = (error, value, l) => {
    if (error !== null || value !== (l & 1)) bad++;
    const i = count[l]++;
    if (i % SAMPLE === 0) lat[l * samplesPerLine + i / SAMPLE] = (performance.now() - sent[l]) * 1000;
    if (i + 1 < perLine) {
      if ((i + 1) % SAMPLE === 0) sent[l] = performance.now();
      d.send(MessageType.GET_VALUE, l, 0, handler, l);
    } else if (--running === 0) finish();
  };
  const start = clock();
  for (let l = 0; l < inFlight; l++) {
    sent[l] = performance.now();
    d.send(MessageType.GET_VALUE, l, 0, handler, l);
  }
  d.flush();
  await done;
  const elapsed = lap(start);
  await chip.close();
  if (bad > 0) throw new Error(`${bad} GET_VALUE replies were errors or had the wrong level`);
  return result(`GET_VALUE, ${inFlight} in flight (send)`, perLine * inFlight, elapsed, lat);
}

/** `await driver.getValues(all 64 lines)` in a loop: latency is per batch. */
async function getValuesBatched(lines: number, ops: number): Promise<LoopbackResult> {
  const { chip } = await openInputs(lines);
  const d = chip.driver;
  const offsets = Array.from({ length: lines }, (_, l) => l);
  const rounds = Math.floor(ops / lines);
  const lat = new Array<number>(rounds).fill(0);
  let bad = 0;
  const start = clock();
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    const values = await d.getValues(offsets);
    lat[i] = (performance.now() - t) * 1000;
    for (let l = 0; l < lines; l++) if (values[l] !== (l & 1)) bad++;
  }
  const elapsed = lap(start);
  await chip.close();
  if (bad > 0) throw new Error(`${bad} levels read by getValues were wrong`);
  return result(`getValues of ${lines} lines, batched`, rounds * lines, elapsed, lat);
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
  const start = clock();
  await done;
  const elapsed = lap(start);
  const counters = device.snapshot()[0].counters;
  await chip.close();
  if (counters.delivered !== ops || counters.latched !== 0)
    throw new Error(`expected ${ops} live deliveries, got ${JSON.stringify(counters)}`);
  return result('IRQ round trip (edge → handler → ack)', ops, elapsed, lat);
}

export const IN_FLIGHT = [1, 8, 64] as const;

type Scenario = { name: string; run: (ops: number) => Promise<LoopbackResult> };

const SCENARIOS: readonly Scenario[] = [
  ...IN_FLIGHT.map((n) => ({
    name: `GET_VALUE, ${n} in flight (await)`,
    run: (ops: number) => getValue(n, ops),
  })),
  ...IN_FLIGHT.map((n) => ({
    name: `GET_VALUE, ${n} in flight (send)`,
    run: (ops: number) => getValueSend(n, ops),
  })),
  { name: 'getValues of 64 lines, batched', run: (ops: number) => getValuesBatched(64, ops) },
  { name: 'IRQ round trip (edge → handler → ack)', run: (ops: number) => irqRoundTrips(ops) },
];

/** Scenario names in the order they run. */
export const SCENARIO_NAMES: readonly string[] = SCENARIOS.map((s) => s.name);

/**
 * The scenarios (those whose name contains one of `only`, case-insensitive; all by default),
 * `iterations` operations each, each after a warm-up (JIT) that is not reported.
 */
export async function loopbackBench(
  iterations: number,
  warmup = 2000,
  only: readonly string[] = [],
): Promise<LoopbackResult[]> {
  const picked = SCENARIOS.filter(
    (s) => only.length === 0 || only.some((w) => s.name.toLowerCase().includes(w.toLowerCase())),
  );
  const out: LoopbackResult[] = [];
  for (const s of picked) {
    if (warmup > 0) await s.run(Math.max(64, warmup));
    out.push(await s.run(iterations));
  }
  return out;
}

export function formatLoopback(results: readonly LoopbackResult[], iterations: number): string {
  const rows = results.map((r) => [
    r.scenario,
    String(r.ops),
    r.seconds.toFixed(2),
    Math.round(r.opsPerSecond).toLocaleString('en-US'),
    r.cpuUsPerOp.toFixed(2),
    r.p50Us.toFixed(1),
    r.p99Us.toFixed(1),
  ]);
  const head = ['scenario', 'ops', 'time s', 'ops/s', 'CPU µs/op', 'p50 µs', 'p99 µs'];
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
    options: {
      iterations: { type: 'string', short: 'n' },
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  });
  const only = values.only === undefined ? [] : values.only.split(',').filter((w) => w !== '');
  const iterations = values.iterations === undefined ? DEFAULT_ITERATIONS : Number(values.iterations);
  if (!Number.isInteger(iterations) || iterations < 64) {
    process.stderr.write(`--iterations must be an integer >= 64 (got ${values.iterations})\n`);
    return 2;
  }
  const results = await loopbackBench(iterations, 2000, only);
  if (results.length === 0) {
    process.stderr.write(`--only ${values.only}: no scenario matches (${SCENARIO_NAMES.join('; ')})\n`);
    return 2;
  }
  process.stdout.write(
    values.json
      ? JSON.stringify({ node: process.version, iterations, results }, null, 2) + '\n'
      : formatLoopback(results, iterations),
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = await main();
