import { GpioDriver } from '../driver/gpio-driver.ts';
import { getAffinity, getCpu, setAffinity } from '../native/index.ts';
import { IrqType, VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserError, VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import type { InputDriver } from '../conformance/input-driver.ts';
import { NodeBenchFrontend, type BenchFrontend, type FrontendKind } from './bench-frontend.ts';
import { CBenchFrontend } from './bench-frontend-c.ts';
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
  /** What sends the requests: the C front-end (measures the back-end) or our Node driver. */
  frontend: FrontendKind;
  /** C front-end: poll used.idx instead of blocking in read(2) on the call eventfd. */
  spin?: boolean;
  /** C front-end: negotiate VIRTIO_F_EVENT_IDX. */
  eventIdx?: boolean;
}

/** CPU time per request of one measure: the back-end's (null without a pid) and the front-end's. */
export interface CpuPerRequest {
  backendUs: number | null;
  frontendUs: number;
}

export interface Throughput {
  linesInFlight: number;
  requests: number;
  requestsPerSec: number;
  cpu: CpuPerRequest;
}

export interface TargetResult {
  socket: string;
  backendPid: number | null;
  roundTrip: LatencySummary;
  roundTripCpu: CpuPerRequest;
  throughput: Throughput[];
  interrupt: (LatencySummary & { drive: string }) | null;
  /** Back-end CPU time (all its threads) over every request measured, per request; null without a pid. */
  backendCpuUsPerRequest: number | null;
  /** The front-end's CPU time per request: the C process's, or this process's with the Node driver. */
  benchCpuUsPerRequest: number;
  ratios: {
    roundTripP50OverCFloorP50: number | null;
    roundTripP50OverNodeFloorP50: number;
    /** requests/s with the most lines in flight over requests/s with the fewest. */
    inFlightSpeedup: number;
  };
  backendCpu: number | null;
  /** The CPU the front-end last ran on. */
  frontendCpu: number | null;
  /** C front-end: kicks written over the session, and kicks the back-end suppressed (busy polling). */
  kicks: { sent: number; suppressed: number } | null;
}

export interface BenchResult {
  frontend: FrontendKind;
  /** C front-end: how it waits for completions. */
  wait: 'read' | 'spin' | null;
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

/** CPU time spent on some requests, by both sides. */
interface Cost {
  requests: number;
  backendNs: bigint | null;
  frontendNs: number;
}
const noCost = (): Cost => ({ requests: 0, backendNs: 0n, frontendNs: 0 });
const perRequest = (c: Cost): CpuPerRequest => ({
  backendUs: c.backendNs === null ? null : Number(c.backendNs) / 1000 / c.requests,
  frontendUs: c.frontendNs / 1000 / c.requests,
});

interface Session {
  target: BenchTarget;
  frontend: BenchFrontend;
  ngpio: number;
  roundTrip: number[];
  roundTripCost: Cost;
  throughput: Map<number, { ns: number; cost: Cost }>;
  total: Cost;
}

/**
 * Runs `body` as one slice of a target's measurement, adding its CPU cost to the measure's and the
 * session's: the back-end's (from /proc) and the front-end's (as `body` reports it).
 */
async function slice<T extends { cpuNs: number }>(
  s: Session,
  cost: Cost,
  body: () => Promise<T>,
  requestsOf: (r: T) => number,
): Promise<T> {
  const pid = s.target.backendPid;
  const b0 = pid === null ? null : cpuNsOf(pid);
  const r = await body();
  const b1 = pid === null ? null : cpuNsOf(pid);
  for (const c of [cost, s.total]) {
    c.frontendNs += r.cpuNs;
    c.requests += requestsOf(r);
    if (b0 === null || b1 === null) c.backendNs = null;
    else if (c.backendNs !== null) c.backendNs += b1 - b0;
  }
  return r;
}

/**
 * Connects again after the request measures' front-end left: some back-ends (rust-vmm's
 * vhost-device-gpio) re-create their socket after each disconnect, so it may be missing a moment.
 */
async function reconnect(socket: string, waitMs = 5000): Promise<VhostUserFrontend> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      return await VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO, { timeoutMs: 5000 });
    } catch (e) {
      if (!(e instanceof VhostUserError && e.message.startsWith('cannot connect')) || Date.now() > until)
        throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Interrupt latency needs the eventq: always through our Node driver, on a connection of its own. */
async function interruptLatency(
  socket: string,
  drive: InputDriver,
  n: number,
): Promise<(LatencySummary & { drive: string }) | null> {
  const driver = await GpioDriver.open(await reconnect(socket));
  try {
    return driver.irqSupported ? await measureInterrupts(driver, drive, n) : null;
  } finally {
    await driver.close();
  }
}

async function measureInterrupts(
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
  const connected = new Set<BenchFrontend>();
  const open = (socket: string): Promise<BenchFrontend> =>
    o.frontend === 'c'
      ? CBenchFrontend.open(socket, { cpu: cpus?.bench ?? null, spin: o.spin, eventIdx: o.eventIdx })
      : NodeBenchFrontend.open(socket);
  try {
    for (const target of o.targets) {
      if (cpus && target.backendPid !== null) pins.push(pinProcess(target.backendPid, cpus.peer));
      const frontend = await open(target.socket);
      connected.add(frontend);
      sessions.push({
        target,
        frontend,
        ngpio: frontend.ngpio,
        roundTrip: [],
        roundTripCost: noCost(),
        throughput: new Map(),
        total: noCost(),
      });
    }
    const n = o.iterations;
    const rounds = Math.max(1, Math.min(o.rounds, n));
    for (const s of sessions) {
      await s.frontend.setInputs(Math.min(Math.max(1, ...o.inFlight), s.frontend.ngpio));
      await s.frontend.roundTrips(Math.min(200, n)); // warm-up (JIT, caches)
    }

    const perRound = Math.ceil(n / rounds);
    for (let r = 0; r < rounds; r++)
      for (const s of sessions) {
        const rt = await slice(
          s,
          s.roundTripCost,
          () => s.frontend.roundTrips(perRound),
          (x) => x.samplesUs.length,
        );
        for (const x of rt.samplesUs) s.roundTrip.push(x); // (a spread of 10⁵ arguments could overflow)
      }

    for (const want of o.inFlight)
      for (let r = 0; r < rounds; r++)
        for (const s of sessions) {
          const lines = Math.min(want, s.ngpio);
          const acc = s.throughput.get(want) ?? { ns: 0, cost: noCost() };
          s.throughput.set(want, acc);
          const run = await slice(
            s,
            acc.cost,
            () => s.frontend.inFlight(lines, Math.ceil(n / rounds)),
            (x) => x.requests,
          );
          acc.ns += run.ns;
        }
    for (const s of sessions) {
      connected.delete(s.frontend);
      await s.frontend.close(); // the C front-end checks where the ring stopped
    }

    const interrupts = new Map<Session, TargetResult['interrupt']>();
    for (const s of sessions)
      interrupts.set(
        s,
        s.target.drive
          ? await interruptLatency(s.target.socket, s.target.drive, Math.max(1, Math.floor(n / 10)))
          : null,
      );

    const floorCpus: [number, number] | null = cpus ? [cpus.bench, cpus.peer] : null;
    const node = await eventfdFloor(n, cpus?.peer);
    const c = await cEventfdFloor(n, floorCpus).catch((e: Error) => ({ error: e.message }));
    const cP50 = 'error' in c ? null : c.p50;

    const targets = sessions.map((s): TargetResult => {
      const roundTrip = summarize(s.roundTrip);
      const throughput = [...s.throughput].map(([want, t]): Throughput => ({
        linesInFlight: Math.min(want, s.ngpio),
        requests: t.cost.requests,
        requestsPerSec: Math.round(t.cost.requests / (t.ns / 1e9)),
        cpu: perRequest(t.cost),
      }));
      const total = perRequest(s.total);
      const first = throughput[0]?.requestsPerSec ?? NaN;
      const last = throughput[throughput.length - 1]?.requestsPerSec ?? NaN;
      return {
        socket: s.target.socket,
        backendPid: s.target.backendPid,
        roundTrip,
        roundTripCpu: perRequest(s.roundTripCost),
        throughput,
        interrupt: interrupts.get(s) ?? null,
        backendCpuUsPerRequest: total.backendUs,
        benchCpuUsPerRequest: total.frontendUs,
        ratios: {
          roundTripP50OverCFloorP50: cP50 === null ? null : roundTrip.p50 / cP50,
          roundTripP50OverNodeFloorP50: roundTrip.p50 / node.p50,
          inFlightSpeedup: last / first,
        },
        backendCpu: s.target.backendPid === null ? null : lastCpuOf(s.target.backendPid),
        frontendCpu: s.frontend.lastCpu,
        kicks: s.frontend instanceof CBenchFrontend ? s.frontend.kicks : null,
      };
    });
    return {
      frontend: o.frontend,
      wait: o.frontend === 'c' ? (o.spin ? 'spin' : 'read') : null,
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
    for (const f of connected) await f.close().catch(() => undefined); // after an error: cleanup only
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
  const out: string[] = [
    r.frontend === 'c'
      ? `front-end: C (vgpio_bench_frontend), waiting by ${r.wait === 'spin' ? 'polling used.idx' : 'read(2) on the call eventfd'}`
      : 'front-end: Node (our driver over our vhost-user front-end)',
    '',
  ];
  for (const t of r.targets) {
    const rows: string[][] = [
      ['MEASURE', 'N', 'P50 µs', 'P90 µs', 'P99 µs', 'MAX µs', 'RATE /s', 'CPU µs/REQ BACK/FRONT'],
    ];
    const cpu = (c: CpuPerRequest) =>
      `${c.backendUs === null ? '-' : c.backendUs.toFixed(2)} / ${c.frontendUs.toFixed(2)}`;
    const lat = (name: string, s: LatencySummary, c?: CpuPerRequest) =>
      rows.push([name, String(s.n), f(s.p50), f(s.p90), f(s.p99), f(s.max), '', c ? cpu(c) : '']);
    lat('GET_VALUE round trip', t.roundTrip, t.roundTripCpu);
    for (const x of t.throughput)
      rows.push([
        `GET_VALUE, ${x.linesInFlight} line(s) in flight`,
        String(x.requests),
        '',
        '',
        '',
        '',
        String(x.requestsPerSec),
        cpu(x.cpu),
      ]);
    if (t.interrupt) lat(`interrupt: drive → event (${t.interrupt.drive})`, t.interrupt);
    else rows.push(['interrupt latency', '-', '', '', '', '', 'skipped: no drive hook / no IRQ']);
    out.push(`vgpio bench: ${t.socket}`, '', table(rows), '');
    out.push(
      `round trip p50 / C floor p50: ${t.ratios.roundTripP50OverCFloorP50?.toFixed(2) ?? '-'}×; / Node floor p50: ${t.ratios.roundTripP50OverNodeFloorP50.toFixed(2)}×; most vs fewest lines in flight: ${t.ratios.inFlightSpeedup.toFixed(2)}× requests/s`,
      `CPU per request: back-end ${t.backendCpuUsPerRequest === null ? 'unknown (no pid)' : `${t.backendCpuUsPerRequest.toFixed(2)} µs`} (pid ${t.backendPid ?? '-'}, last on CPU ${t.backendCpu ?? '-'}); front-end (${r.frontend === 'c' ? 'C' : 'Node'}) ${t.benchCpuUsPerRequest.toFixed(2)} µs (last on CPU ${t.frontendCpu ?? '-'})`,
      ...(t.kicks
        ? [
            `kicks: ${t.kicks.sent} sent, ${t.kicks.suppressed} suppressed by the back-end (used.flags NO_NOTIFY or avail_event)`,
          ]
        : []),
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
