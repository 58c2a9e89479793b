import { readFileSync } from 'node:fs';
import { GpioDriver } from '../driver/gpio-driver.ts';
import { getAffinity, getCpu } from '../native/index.ts';
import { Direction, IrqType, VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import type { InputDriver } from '../conformance/input-driver.ts';
import { eventfdFloor, type FloorResult } from './eventfd-floor.ts';
import { summarize, type LatencySummary } from './percentiles.ts';

export interface BenchOptions {
  socket: string;
  iterations: number;
  drive: InputDriver | null;
  /** The back-end's pid, when known (vgpio reports it), to report where it ran. */
  backendPid?: number;
  /** CPU the floor's child is pinned to (default: not pinned). */
  floorCpu?: number;
}

export interface Throughput {
  linesInFlight: number;
  requests: number;
  requestsPerSec: number;
}

export interface BenchResult {
  roundTrip: LatencySummary;
  throughput: Throughput[];
  interrupt: (LatencySummary & { drive: string }) | null;
  floor: FloorResult;
  ratios: { roundTripP50OverFloorP50: number; inFlightSpeedup: number };
  placement: { benchAffinity: number[]; benchCpu: number; backendCpu: number | null; floorChildCpu: number };
}

const now = (): bigint => process.hrtime.bigint();
const us = (a: bigint, b: bigint): number => Number(b - a) / 1000;

/** The CPU a process last ran on (/proc/PID/stat field 39), or null. */
export function lastCpuOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[36]);
  } catch {
    return null;
  }
}

/** Latency, throughput and interrupt latency of a vhost-user-gpio back-end, beside the eventfd floor. */
export async function benchBackend(o: BenchOptions): Promise<BenchResult> {
  const transport = await VhostUserFrontend.connect(o.socket, VIRTIO_ID_GPIO, { timeoutMs: 5000 });
  const driver = await GpioDriver.open(transport);
  try {
    const n = o.iterations;
    await driver.setDirection(0, Direction.IN);
    for (let i = 0; i < Math.min(100, n); i++) await driver.getValue(0); // warm-up

    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      await driver.getValue(0);
      samples.push(us(t0, now()));
    }
    const roundTrip = summarize(samples);

    const throughput: Throughput[] = [];
    for (const want of [1, 64]) {
      const lines = Math.min(want, driver.ngpio);
      const per = Math.max(1, Math.ceil(n / lines));
      const t0 = now();
      await Promise.all(
        Array.from({ length: lines }, async (_, line) => {
          for (let i = 0; i < per; i++) await driver.getValue(line);
        }),
      );
      const total = per * lines;
      throughput.push({
        linesInFlight: lines,
        requests: total,
        requestsPerSec: Math.round(total / (us(t0, now()) / 1e6)),
      });
      if (lines === driver.ngpio) break;
    }

    let interrupt: BenchResult['interrupt'] = null;
    if (o.drive && driver.irqSupported) {
      let fired: (() => void) | null = null;
      await o.drive.set(0, 0);
      await driver.enableIrq(0, IrqType.EDGE_BOTH, () => {
        fired?.();
      });
      const irq: number[] = [];
      let level: 0 | 1 = 0;
      for (let i = 0; i < Math.max(1, Math.floor(n / 10)); i++) {
        level = level === 0 ? 1 : 0;
        const seen = new Promise<void>((r) => (fired = r));
        const t0 = now();
        await o.drive.set(0, level);
        await seen;
        irq.push(us(t0, now()));
        await new Promise((r) => setImmediate(r)); // let the driver re-queue the buffer (the ack)
      }
      await driver.disableIrq(0);
      interrupt = { ...summarize(irq), drive: o.drive.description };
    }

    const backendCpu = o.backendPid === undefined ? null : lastCpuOf(o.backendPid);
    const floor = await eventfdFloor(n, o.floorCpu);
    const t1 = throughput[0]?.requestsPerSec ?? NaN;
    const tN = throughput[throughput.length - 1]?.requestsPerSec ?? NaN;
    return {
      roundTrip,
      throughput,
      interrupt,
      floor,
      ratios: { roundTripP50OverFloorP50: roundTrip.p50 / floor.p50, inFlightSpeedup: tN / t1 },
      placement: {
        benchAffinity: getAffinity(),
        benchCpu: getCpu(),
        backendCpu,
        floorChildCpu: floor.childCpu,
      },
    };
  } finally {
    await driver.close();
  }
}

export function formatBench(r: BenchResult, socket: string): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const rows: string[][] = [['MEASURE', 'N', 'P50 µs', 'P90 µs', 'P99 µs', 'MAX µs', 'RATE /s']];
  const lat = (name: string, s: LatencySummary) =>
    rows.push([name, String(s.n), f(s.p50), f(s.p90), f(s.p99), f(s.max), '']);
  lat('GET_VALUE round trip', r.roundTrip);
  for (const t of r.throughput)
    rows.push([
      `GET_VALUE, ${t.linesInFlight} line(s) in flight`,
      String(t.requests),
      '',
      '',
      '',
      '',
      String(t.requestsPerSec),
    ]);
  if (r.interrupt) lat(`interrupt: drive → event (${r.interrupt.drive})`, r.interrupt);
  else rows.push(['interrupt latency', '-', '', '', '', '', 'skipped: no drive hook / no IRQ']);
  lat('floor: eventfd ping-pong, 2 processes', r.floor);
  const w = rows[0].map((_, i) => Math.max(...rows.map((x) => (x[i] ?? '').length)));
  const table = rows
    .map((x) => x.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '))
    .join('\n');
  const p = r.placement;
  return [
    `vgpio bench: ${socket}`,
    '',
    table,
    '',
    `round trip p50 / floor p50: ${r.ratios.roundTripP50OverFloorP50.toFixed(2)}×; ${r.throughput[r.throughput.length - 1]?.linesInFlight} lines in flight vs 1: ${r.ratios.inFlightSpeedup.toFixed(2)}× requests/s`,
    `CPU placement: bench affinity [${p.benchAffinity.join(',')}] last on CPU ${p.benchCpu}; back-end last on CPU ${p.backendCpu ?? 'unknown'}; floor child on CPU ${p.floorChildCpu}`,
    '',
  ].join('\n');
}
