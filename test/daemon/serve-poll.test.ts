import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GpioDriver } from '../../src/driver/gpio-driver.ts';
import { Direction, VIRTIO_ID_GPIO } from '../../src/protocol/constants.ts';
import { VhostUserFrontend } from '../../src/transports/vhost-user/frontend.ts';

const cli = join(import.meta.dirname, '../../src/cli/main.ts');

test('vgpio serve --poll-us 50: a front-end in another process gets every reply, whatever the gaps', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-poll-serve-'));
  const socket = join(dir, 'gpio.sock');
  const daemon = spawn(
    process.execPath,
    ['--import', 'tsx', cli, 'serve', '--socket', socket, '--lines', '4', '--poll-us', '50'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let err = '';
      daemon.stderr?.on('data', (b: Buffer) => {
        err += b.toString();
        if (err.includes('serving')) resolve();
      });
      daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${err}`)));
    });
    const driver = await GpioDriver.open(await VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO), {
      requestTimeoutMs: 5000,
    });
    await driver.setDirection(0, Direction.OUT);
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 1) await new Promise((r) => setImmediate(r));
      if (i % 3 === 2) await new Promise((r) => setTimeout(r, 1));
      await driver.setValue(0, (i & 1) as 0 | 1);
      assert.equal(await driver.getValue(0), i & 1);
    }
    await driver.close();
  } finally {
    daemon.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vgpio serve --poll-us: not a number of microseconds is a usage error', () => {
  for (const bad of ['abc', '2000000', '1.5', '-1']) {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', cli, 'serve', '--socket', '/tmp/x.sock', `--poll-us=${bad}`],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`--poll-us must be 0\\.\\.1000000 microseconds \\(got ${bad.replace('.', '\\.')}\\)`),
    );
  }
});
