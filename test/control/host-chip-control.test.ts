// The control endpoint of a device that serves a host chip (no simulated wires): status carries the
// chip and its state; input, pulse and output are refused with the reason. Real sockets; the chip is
// the simulated gpiolib chip of the hostchip unit tests.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/control-client.ts';
import { ControlServer } from '../../src/control/control-server.ts';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { HostChipLines } from '../../src/hostchip/host-chip-lines.ts';
import { StreamLogger } from '../../src/log/logger.ts';
import { Direction, MessageType } from '../../src/protocol/constants.ts';
import { FakeGpioChip } from '../hostchip/fake-gpio-chip.ts';

describe('control endpoint of a host chip device', () => {
  it('status shows the chip and its state; input/pulse/output are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-hc-'));
    const chip = new FakeGpioChip('/dev/gpiochip9', ['a', 'b']);
    const lines = HostChipLines.open({ path: '/dev/gpiochip9', io: chip });
    const device = new GpioDevice(lines);
    const log = new StreamLogger({ level: 'error', write: () => {} });
    const socket = join(dir, 'd.sock');
    const server = await ControlServer.listen(
      `${socket}.ctl`,
      {
        device,
        lines: null,
        status: () => ({
          socket,
          pid: process.pid,
          connected: false,
          features: null,
          irqNegotiated: false,
          chip: { path: lines.path, state: lines.state },
        }),
      },
      log,
    );
    const c = await ControlClient.connect(socket);
    try {
      device.handle({ type: MessageType.SET_DIRECTION, gpio: 1, value: Direction.OUT });
      const s = await c.status();
      assert.deepEqual(s.chip, { path: '/dev/gpiochip9', state: 'open' });
      assert.deepEqual(
        s.lines.map((l) => [l.name, l.direction]),
        [
          ['a', 'none'],
          ['b', 'output'],
        ],
      );
      for (const call of [() => c.setInput(0, 1), () => c.pulse(0), () => c.getOutput(1)])
        await assert.rejects(call, /the lines are a host GPIO chip's, driven by its hardware/);
      chip.unplugged = true;
      device.handle({ type: MessageType.GET_VALUE, gpio: 1, value: 0 });
      assert.deepEqual((await c.status()).chip, { path: '/dev/gpiochip9', state: 'gone' });
    } finally {
      c.close();
      await server.close();
      lines.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
