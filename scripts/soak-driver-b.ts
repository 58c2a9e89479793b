// The soak's well-behaved driver on device B, in a worker thread of its own so that the attacker's
// work in the main thread does not show up as B's latency: GET_VALUE round trips until `end`, each
// sample tagged with its wall-clock start, posted to the parent at the end.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { openChip } from '../test/transports/vhost-user/harness.ts';

export interface DriverBResult {
  /** [Date.now() at the start, round trip in ms] per GET_VALUE that succeeded. */
  samples: Array<[number, number]>;
  failures: number;
}

const { path, end } = workerData as { path: string; end: number };
const result: DriverBResult = { samples: [], failures: 0 };
const chip = await openChip(path);
const req = await chip.requestLines({ lines: { 0: { direction: 'input' } } });
while (Date.now() < end) {
  const at = Date.now();
  const t0 = performance.now();
  try {
    await req.getValue(0);
    result.samples.push([at, performance.now() - t0]);
  } catch {
    result.failures++;
  }
  await sleep(1);
}
await chip.close().catch(() => {});
parentPort?.postMessage(result);
