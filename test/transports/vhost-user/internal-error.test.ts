import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GpioDriver } from '../../../src/driver/gpio-driver.ts';
import { GpioDevice } from '../../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../../src/device/virtio-gpio-device.ts';
import type { LogLevel } from '../../../src/log/logger.ts';
import { VIRTIO_ID_GPIO } from '../../../src/protocol/constants.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import { VhostUserServer } from '../../../src/transports/vhost-user/server.ts';
import type { DescriptorChain } from '../../../src/virtqueue/descriptor-chain.ts';

const dir = mkdtempSync(join(tmpdir(), 'vgpio-ie-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a bug while serving a ring ends that connection only; the server accepts the next one', async () => {
  const lines = new SimulatedLines(2);
  const device = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines));
  const kick = device.kick.bind(device);
  let explode = false;
  device.kick = (i: number) => {
    if (explode && i === 0) throw new TypeError('simulated bug');
    kick(i);
  };
  const logged: Array<[LogLevel, string, string]> = [];
  const log = {
    log: (level: LogLevel, msg: string, f: Record<string, unknown> = {}) =>
      logged.push([level, msg, String(f.error ?? f.reason ?? '')]),
    child: () => log,
  };
  const path = join(dir, 'gpio.sock');
  const server = new VhostUserServer(device, { socketPath: path, log });
  try {
    const fe = await VhostUserFrontend.connect(path, VIRTIO_ID_GPIO, { timeoutMs: 1000 });
    const d = await GpioDriver.open(fe, { requestTimeoutMs: 500 });
    explode = true;
    await assert.rejects(d.getValue(0), /no answer from the device within 500 ms/);
    assert.ok(
      logged.some(
        ([l, m, e]) =>
          l === 'error' && m === 'internal error serving ring 0: disconnecting' && e === 'simulated bug',
      ),
      JSON.stringify(logged),
    );
    await d.close();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.connected, false);

    explode = false;
    const d2 = await GpioDriver.open(await VhostUserFrontend.connect(path, VIRTIO_ID_GPIO), {
      requestTimeoutMs: 2000,
    });
    lines.setInput(1, 1);
    await d2.setDirection(1, 2);
    assert.equal(await d2.getValue(1), 1);
    await d2.close();
  } finally {
    server.close();
  }
});
