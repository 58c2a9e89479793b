// Shared by the allocation tests (test/device, test/driver): how much a steady-state run allocates,
// counted as scavenges in a young generation the child was started with (--max/min-semi-space-size).
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';

export interface AllocationRound {
  scavenges: number;
  /** Heap used after a full GC, minus before the round. */
  heapGrowthBytes: number;
  seconds: number;
}

/**
 * Runs `round` up to `rounds` times (after the caller's warm-up) and returns the round with the
 * fewest scavenges, with what `round` returned. Steady state is what is measured: on a loaded
 * machine V8's background compiler can still be busy after the warm-up (and code not yet optimized
 * allocates); code that allocates per request does so every round. Needs --expose-gc.
 */
export async function fewestScavenges<T extends object>(
  round: () => T | Promise<T>,
  rounds = 3,
): Promise<T & AllocationRound> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  let best: (T & AllocationRound) | null = null;
  for (let i = 0; i < rounds && (best === null || best.scavenges > 0); i++) {
    gc();
    let scavenges = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        if ((e as { detail?: { kind?: number } }).detail?.kind === perf.NODE_PERFORMANCE_GC_MINOR)
          scavenges++;
    });
    obs.observe({ entryTypes: ['gc'] });
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const result = await round();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await new Promise((r) => setTimeout(r, 50)); // gc entries are delivered asynchronously
    obs.disconnect();
    gc();
    const heapGrowthBytes = process.memoryUsage().heapUsed - heap0;
    if (best === null || scavenges < best.scavenges)
      best = { ...result, scavenges, heapGrowthBytes, seconds };
  }
  return best!;
}
