import { GpioDriver } from '../driver/gpio-driver.ts';
import { getAffinity, getCpu, setAffinity } from '../native/index.ts';
import { Direction, IrqType, VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import type { InputDriver } from '../conformance/input-driver.ts';
import { cEventfdFloor, eventfdFloor, type FloorResult } from './eventfd-floor.ts';
import { summarize, type LatencySummary } from './percentiles.ts';
import { cpuNsOf, lastCpuOf, pinProcess, type ProcessPin } from './process-stats.ts';

/** One back-end to measure. */
export interface BenchTarget {
  socket: string;
  /** Sets an input of that back-end (interrupt latency), or null to skip that measure. */
  drive: InputDriver | null;
  /** The back-end's pid, when known: its CPU time per request, where it ran, its pinning. */
  backendPid: number | null;
}

/** Where everything runs: the same CPU for all, or the back-ends (and the floors' peers) on another. */
export type PlacementMode = 'same' | 'split';

export interface BenchOptions {
  targets: BenchTarget[];
  /** Round trips per latency measurement, and requests per throughput measurement. */
  iterations: number;
  /** Lines in flight of the throughput measurements. */
  inFlight: readonly number[];
  /** Each measurement is cut into this many slices, taken from each target in turn (interleaved). */
  rounds: number;
  placement: PlacementMode | null;
}

export interface Throughput {
  linesInFlight: number;
  requests: number;
  requestsPerSec: number;
}

export interface TargetResult {
  socket: string;
  backendPid: number | null;
  roundTrip: LatencySummary;
  throughput: Throughput[];
  interrupt: (LatencySummary & { drive: string }) | null;
  /** Back-end CPU time (all its threads) over every request measured, per request; null without a pid. */
  backendCpuUsPerRequest: number | null;
  /** This process's CPU time (the Node front-end and driver) per request. */
  benchCpuUsPerRequest: number;
  ratios: {
    roundTripP50OverCFloorP50: number | null;
    roundTripP50OverNodeFloorP50: number;
    /** requests/s with the most lines in flight over requests/s with the fewest. */
    inFlightSpeedup: number;
  };
  backendCpu: number | null;
}

export interface BenchResult {
  targets: TargetResult[];
  floor: { node: FloorResult; c: FloorResult | { error: string } };
  placement: {
    mode: PlacementMode | null;
    benchAffinity: number[];
    benchCpu: number;
    /** CPU each pinned back-end was given (placement mode), by socket. */
    backendPinnedTo: number | null;
    floorCpus: [number, number] | null;
  };
  rounds: number;
}

const now = (): bigint => process.hrtime.bigint();
const us = (a: bigint, b: bigint): number => Number(b - a) / 1000;

interface Session {
  target: BenchTarget;
  driver: GpioDriver;
  roundTrip: number[];
  throughput: Map<number, { requests: number; ns: bigint }>;
  backendNs: bigint | null;
  benchUs: number;
  requests: number;
}

/** Runs `body` as one slice of a target's measurement, adding its CPU cost (both sides) to the session. */
async function slice(s: Session, requests: number, body: () => Promise<void>): Promise<void> {
  const pid = s.target.backendPid;
  const b0 = pid === null ? null : cpuNsOf(pid);
  const c0 = process.cpuUsage();
  await body();
  const c1 = process.cpuUsage(c0);
  const b1 = pid === null ? null : cpuNsOf(pid);
  s.benchUs += c1.user + c1.system;
  s.requests += requests;
  if (b0 === null || b1 === null) s.backendNs = null;
  else if (s.backendNs !== null) s.backendNs += b1 - b0;
}

/** `per` GET_VALUE requests on each of `lines` lines, one sequential loop per line, all at once. */
async function inFlight(driver: GpioDriver, lines: number, per: number): Promise<void> {
  const loops: Promise<void>[] = [];
  for (let line = 0; line < lines; line++)
    loops.push(
      (async () => {
        for (let i = 0; i < per; i++) await driver.getValue(line);
      })(),
    );
  await Promise.all(loops);
}

async function interruptLatency(
  driver: GpioDriver,
  drive: InputDriver,
  n: number,
): Promise<LatencySummary & { drive: string }> {
  let fired: (() => void) | null = null;
  await drive.set(0, 0);
  await driver.enableIrq(0, IrqType.EDGE_BOTH, () => {
    fired?.();
  });
  const irq: number[] = [];
  let level: 0 | 1 = 0;
  for (let i = 0; i < n; i++) {
    level = level === 0 ? 1 : 0;
    const seen = new Promise<void>((r) => (fired = r));
    const t0 = now();
    await drive.set(0, level);
    await seen;
    irq.push(us(t0, now()));
    await new Promise((r) => setImmediate(r)); // let the driver re-queue the buffer (the ack)
  }
  await driver.disableIrq(0);
  return { ...summarize(irq), drive: drive.description };
}

/** CPUs of the placement: this process on the first allowed CPU; back-ends and peers there or on the next. */
function placementCpus(mode: PlacementMode): { bench: number; peer: number } {
  const allowed = getAffinity();
  const bench = allowed[0];
  const peer = mode === 'same' ? bench : allowed.find((c) => c !== bench);
  if (peer === undefined) throw new Error('--placement split needs two CPUs in this process affinity');
  return { bench, peer };
}

/**
 * Latency, throughput and interrupt latency of one or more vhost-user-gpio back-ends, measured
 * interleaved (slice by slice, each target in turn) so that they share the machine's noise, beside
 * the eventfd ping-pong floors (C and Node) of the same run.
 */
export async function benchBackends(o: BenchOptions): Promise<BenchResult> {
  const cpus = o.placement ? placementCpus(o.placement) : null;
  const benchAffinity = getAffinity();
  if (cpus) setAffinity([cpus.bench]);
  const pins: ProcessPin[] = [];
  const sessions: Session[] = [];
  try {
    for (const target of o.targets) {
      if (cpus && target.backendPid !== null) pins.push(pinProcess(target.backendPid, cpus.peer));
      const transport = await VhostUserFrontend.connect(target.socket, VIRTIO_ID_GPIO, { timeoutMs: 5000 });
      const driver = await GpioDriver.open(transport);
      sessions.push({
        target,
        driver,
        roundTrip: [],
        throughput: new Map(),
        backendNs: 0n,
        benchUs: 0,
        requests: 0,
      });
    }
    const n = o.iterations;
    const rounds = Math.max(1, Math.min(o.rounds, n));
    for (const s of sessions) {
      await s.driver.setDirection(0, Direction.IN);
      for (let i = 0; i < Math.min(200, n); i++) await s.driver.getValue(0); // warm-up (JIT, caches)
    }

    const perRound = Math.ceil(n / rounds);
    for (let r = 0; r < rounds; r++)
      for (const s of sessions)
        await slice(s, perRound, async () => {
          for (let i = 0; i < perRound; i++) {
            const t0 = now();
            await s.driver.getValue(0);
            s.roundTrip.push(us(t0, now()));
          }
        });

    for (const want of o.inFlight)
      for (let r = 0; r < rounds; r++)
        for (const s of sessions) {
          const lines = Math.min(want, s.driver.ngpio);
          const per = Math.max(1, Math.ceil(n / rounds / lines));
          const t0 = now();
          await slice(s, per * lines, () => inFlight(s.driver, lines, per));
          const acc = s.throughput.get(want) ?? { requests: 0, ns: 0n };
          acc.requests += per * lines;
          acc.ns += now() - t0;
          s.throughput.set(want, acc);
        }

    const interrupts = new Map<Session, TargetResult['interrupt']>();
    for (const s of sessions)
      interrupts.set(
        s,
        s.target.drive && s.driver.irqSupported
          ? await interruptLatency(s.driver, s.target.drive, Math.max(1, Math.floor(n / 10)))
          : null,
      );

    const floorCpus: [number, number] | null = cpus ? [cpus.bench, cpus.peer] : null;
    const node = await eventfdFloor(n, cpus?.peer);
    const c = await cEventfdFloor(n, floorCpus).catch((e: Error) => ({ error: e.message }));
    const cP50 = 'error' in c ? null : c.p50;

    const targets = sessions.map((s): TargetResult => {
      const roundTrip = summarize(s.roundTrip);
      const throughput = [...s.throughput].map(([want, t]): Throughput => ({
        linesInFlight: Math.min(want, s.driver.ngpio),
        requests: t.requests,
        requestsPerSec: Math.round(t.requests / (Number(t.ns) / 1e9)),
      }));
      const first = throughput[0]?.requestsPerSec ?? NaN;
      const last = throughput[throughput.length - 1]?.requestsPerSec ?? NaN;
      return {
        socket: s.target.socket,
        backendPid: s.target.backendPid,
        roundTrip,
        throughput,
        interrupt: interrupts.get(s) ?? null,
        backendCpuUsPerRequest: s.backendNs === null ? null : Number(s.backendNs) / 1000 / s.requests,
        benchCpuUsPerRequest: s.benchUs / s.requests,
        ratios: {
          roundTripP50OverCFloorP50: cP50 === null ? null : roundTrip.p50 / cP50,
          roundTripP50OverNodeFloorP50: roundTrip.p50 / node.p50,
          inFlightSpeedup: last / first,
        },
        backendCpu: s.target.backendPid === null ? null : lastCpuOf(s.target.backendPid),
      };
    });
    return {
      targets,
      floor: { node, c },
      placement: {
        mode: o.placement,
        benchAffinity,
        benchCpu: getCpu(),
        backendPinnedTo: cpus && pins.length > 0 ? cpus.peer : null,
        floorCpus,
      },
      rounds,
    };
  } finally {
    for (const s of sessions) await s.driver.close();
    for (const p of pins) p.restore();
    if (cpus) setAffinity(benchAffinity);
  }
}

const f = (x: number | null) => (x !== null && Number.isFinite(x) ? x.toFixed(1) : '-');

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((x) => (x[i] ?? '').length)));
  return rows
    .map((x) => x.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '))
    .join('\n');
}

export function formatBench(r: BenchResult): string {
  const out: string[] = [];
  for (const t of r.targets) {
    const rows: string[][] = [['MEASURE', 'N', 'P50 µs', 'P90 µs', 'P99 µs', 'MAX µs', 'RATE /s']];
    const lat = (name: string, s: LatencySummary) =>
      rows.push([name, String(s.n), f(s.p50), f(s.p90), f(s.p99), f(s.max), '']);
    lat('GET_VALUE round trip', t.roundTrip);
    for (const x of t.throughput)
      rows.push([
        `GET_VALUE, ${x.linesInFlight} line(s) in flight`,
        String(x.requests),
        '',
        '',
        '',
        '',
        String(x.requestsPerSec),
      ]);
    if (t.interrupt) lat(`interrupt: drive → event (${t.interrupt.drive})`, t.interrupt);
    else rows.push(['interrupt latency', '-', '', '', '', '', 'skipped: no drive hook / no IRQ']);
    out.push(`vgpio bench: ${t.socket}`, '', table(rows), '');
    out.push(
      `round trip p50 / C floor p50: ${t.ratios.roundTripP50OverCFloorP50?.toFixed(2) ?? '-'}×; / Node floor p50: ${t.ratios.roundTripP50OverNodeFloorP50.toFixed(2)}×; most vs fewest lines in flight: ${t.ratios.inFlightSpeedup.toFixed(2)}× requests/s`,
      `CPU per request: back-end ${t.backendCpuUsPerRequest === null ? 'unknown (no pid)' : `${t.backendCpuUsPerRequest.toFixed(2)} µs`} (pid ${t.backendPid ?? '-'}, last on CPU ${t.backendCpu ?? '-'}); bench (Node front-end) ${t.benchCpuUsPerRequest.toFixed(2)} µs`,
      '',
    );
  }
  const rows: string[][] = [
    ['FLOOR: eventfd ping-pong, 2 processes', 'N', 'P50 µs', 'P90 µs', 'P99 µs', 'MAX µs'],
  ];
  const fl = (name: string, s: FloorResult | { error: string }) =>
    rows.push(
      'error' in s ? [name, '-', s.error] : [name, String(s.n), f(s.p50), f(s.p90), f(s.p99), f(s.max)],
    );
  fl('C (blocking read)', r.floor.c);
  fl('Node (uv_poll, as the transports)', r.floor.node);
  out.push(table(rows), '');
  if (r.targets.length > 1) {
    const base = r.targets[0];
    out.push(`side by side (interleaved, ${r.rounds} rounds), relative to ${base.socket}:`);
    for (const t of r.targets.slice(1)) {
      const tp = t.throughput.map(
        (x, i) =>
          `${x.linesInFlight} in flight ${(x.requestsPerSec / (base.throughput[i]?.requestsPerSec ?? NaN)).toFixed(2)}×`,
      );
      out.push(
        `  ${t.socket}: p50 ${(t.roundTrip.p50 / base.roundTrip.p50).toFixed(2)}×, requests/s ${tp.join(', ')}`,
      );
    }
    out.push('');
  }
  const p = r.placement;
  out.push(
    `CPU placement: ${p.mode ?? 'not pinned'}; bench affinity [${p.benchAffinity.join(',')}] last on CPU ${p.benchCpu}; back-ends pinned to ${p.backendPinnedTo ?? '-'}; C floor on CPUs ${'error' in r.floor.c ? '-' : `${r.floor.c.parentCpu},${r.floor.c.childCpu}`}; Node floor child on CPU ${r.floor.node.childCpu}`,
    '',
  );
  return out.join('\n');
}
