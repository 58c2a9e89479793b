// One front-end process of the scale bench (scale-bench.ts): connects a GpioDriver to each socket
// it is given, reports 'ready', then on each { run: ms } message drives GET_VALUE on `inFlight`
// lines of every device for that long and reports the count and sampled latencies.
import { GpioDriver } from '../driver/gpio-driver.ts';
import { Direction, VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';

interface RunMessage {
  run?: number;
  inFlight?: number;
  close?: boolean;
}

const sockets = (process.env.VGPIO_SCALE_SOCKETS ?? '').split(',').filter((s) => s !== '');
const drivers: GpioDriver[] = [];
for (const s of sockets) {
  const d = await GpioDriver.open(await VhostUserFrontend.connect(s, VIRTIO_ID_GPIO, { timeoutMs: 10_000 }));
  for (let l = 0; l < d.ngpio; l++) await d.setDirection(l, Direction.IN);
  drivers.push(d);
}

async function run(ms: number, inFlight: number): Promise<{ requests: number; samplesUs: number[] }> {
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

process.on('message', (m: RunMessage) => {
  if (m.close) {
    void Promise.all(drivers.map((d) => d.close())).then(() => process.exit(0));
    return;
  }
  if (m.run !== undefined) void run(m.run, m.inFlight ?? 64).then((r) => process.send?.({ result: r }));
});
process.send?.({ ready: true });
