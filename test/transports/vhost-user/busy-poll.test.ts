import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { GpioDevice } from '../../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../../src/device/virtio-gpio-device.ts';
import { GpioDriver } from '../../../src/driver/gpio-driver.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { Direction, VIRTIO_ID_GPIO } from '../../../src/protocol/constants.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import { VhostUserServer } from '../../../src/transports/vhost-user/server.ts';
import type { DescriptorChain } from '../../../src/virtqueue/descriptor-chain.ts';

// Busy polling (pollUs) loses no kick: the back-end runs in its own process (a poll blocks its
// thread, so the front-end must be elsewhere to add chains meanwhile) and is sent requests with
// gaps inside the poll window, just past it and far past it, alone and in bursts. Each request has
// a timeout: a chain left in the ring with no kick and no poller looking would fail it. Without
// busy polling (0) the back-end still serves with kicks suppressed, so the same must hold.

const LINES = 8;

if (process.env.VGPIO_POLL_SERVER) {
  const lines = new SimulatedLines(LINES);
  for (let l = 0; l < LINES; l++) lines.setInput(l, (l & 1) as 0 | 1);
  const device = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines));
  new VhostUserServer(device, {
    socketPath: process.env.VGPIO_POLL_SERVER,
    log: silentLogger,
    pollUs: Number(process.env.VGPIO_POLL_US),
  });
  process.stdout.write('ready\n');
} else {
  const spin = (us: number) => {
    const until = performance.now() + us / 1000;
    while (performance.now() < until);
  };

  for (const pollUs of [0, 50, 2000])
    test(`--poll-us ${pollUs}: every request answered, whatever the gap between them`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vgpio-poll-'));
      const socket = join(dir, 'gpio.sock');
      const server = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, VGPIO_POLL_SERVER: socket, VGPIO_POLL_US: String(pollUs) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          server.stdout?.once('data', () => resolve());
          server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
        });
        const driver = await GpioDriver.open(await VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO), {
          requestTimeoutMs: 5000,
        });
        for (let l = 0; l < LINES; l++) await driver.setDirection(l, Direction.IN);
        let answered = 0;
        for (let i = 0; i < 600; i++) {
          const gap = i % 5;
          if (gap === 1) await new Promise((r) => setImmediate(r));
          else if (gap === 2)
            spin(pollUs / 2); // inside the window: the poller takes it, no kick
          else if (gap === 3)
            spin(pollUs + 20); // just past it: kicks are back on
          else if (gap === 4) await new Promise((r) => setTimeout(r, 2)); // the poller slept
          if (i % 7 === 0) {
            const v = await Promise.all(Array.from({ length: LINES }, (_, l) => driver.getValue(l)));
            assert.deepEqual(v, [0, 1, 0, 1, 0, 1, 0, 1]);
            answered += LINES;
          } else {
            assert.equal(await driver.getValue(i % LINES), (i % LINES) & 1);
            answered++;
          }
        }
        assert.ok(answered > 600);
        await driver.close();
      } finally {
        server.kill();
        rmSync(dir, { recursive: true, force: true });
      }
    });
}
