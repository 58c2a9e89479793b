// One front-end process of the scale bench (scale-bench.ts): connects a front-end to each socket it
// is given, reports 'ready' (with the pids of its C front-ends, if any), then on each run message
// drives GET_VALUE on `inFlight` lines of every device and reports the count and latencies.
//
// VGPIO_SCALE_FRONTEND=node (default): a GpioDriver per device in this process, for `run` ms;
//   latencies are sampled request by request.
// VGPIO_SCALE_FRONTEND=c: one native/bench-frontend.c process per device (its --commands mode),
//   `requests` requests each with `inFlight` in flight, all devices at once; each request's
//   latency under that load as the C front-end measures it (from the batch that made it available
//   to the batch that found it used), every 16th kept.
import { GpioDriver } from '../driver/gpio-driver.ts';
import { Direction, VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import { CBenchFrontend } from './bench-frontend-c.ts';

interface RunMessage {
  run?: number;
  inFlight?: number;
  /** Requests per device (C front-ends). */
  requests?: number;
  close?: boolean;
}

export interface ClientResult {
  requests: number;
  samplesUs: number[];
  /** C front-ends: the longest of their own measured windows (their output's transfer excluded). */
  wallNs?: number;
}

const sockets = (process.env.VGPIO_SCALE_SOCKETS ?? '').split(',').filter((s) => s !== '');
const useC = process.env.VGPIO_SCALE_FRONTEND === 'c';
const drivers: GpioDriver[] = [];
const cFrontends: CBenchFrontend[] = [];
for (const s of sockets) {
  if (useC) {
    const f = await CBenchFrontend.open(s);
    await f.setInputs(f.ngpio);
    cFrontends.push(f);
    continue;
  }
  const d = await GpioDriver.open(await VhostUserFrontend.connect(s, VIRTIO_ID_GPIO, { timeoutMs: 10_000 }));
  for (let l = 0; l < d.ngpio; l++) await d.setDirection(l, Direction.IN);
  drivers.push(d);
}

async function runNode(ms: number, inFlight: number): Promise<ClientResult> {
  const until = performance.now() + ms;
  const samplesUs: number[] = [];
  let requests = 0;
  const loops: Promise<void>[] = [];
  for (const d of drivers)
    for (let line = 0; line < Math.min(inFlight, d.ngpio); line++)
      loops.push(
        (async () => {
          while (performance.now() < until) {
            const t = performance.now();
            await d.getValue(line);
            if ((++requests & 15) === 0) samplesUs.push((performance.now() - t) * 1000);
          }
        })(),
      );
  await Promise.all(loops);
  return { requests, samplesUs };
}

async function runC(inFlight: number, requests: number): Promise<ClientResult> {
  const runs = await Promise.all(
    cFrontends.map((f) => {
      const k = Math.min(inFlight, f.ngpio);
      return f.inFlightLatencies(k, requests);
    }),
  );
  return {
    requests: runs.reduce((n, r) => n + r.requests, 0),
    samplesUs: runs.flatMap((r) => r.samplesUs.filter((_, i) => (i & 15) === 15)),
    wallNs: Math.max(...runs.map((r) => r.ns)),
  };
}

process.on('message', (m: RunMessage) => {
  if (m.close) {
    void Promise.all([...drivers.map((d) => d.close()), ...cFrontends.map((f) => f.close())]).then(() =>
      process.exit(0),
    );
    return;
  }
  if (m.run !== undefined) {
    const r = useC ? runC(m.inFlight ?? 64, m.requests ?? 20_000) : runNode(m.run, m.inFlight ?? 64);
    void r.then((result) => process.send?.({ result }));
  }
});
process.send?.({ ready: true });
