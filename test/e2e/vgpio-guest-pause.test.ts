import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ServedDevice } from '../../src/daemon/served-device.ts';
import type { LogLevel } from '../../src/log/logger.ts';
import { GuestVm, tryLoadGuestEnv } from './guest/guest-vm.ts';

const env = await tryLoadGuestEnv();
const skip = env ? false : 'guest cache missing: run test/e2e/guest/build-guest.sh';
const dir = mkdtempSync(join(tmpdir(), 'vgpio-pause-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** QEMU's human monitor on a Unix socket: send a command, wait for the next prompt. */
async function monitor(path: string): Promise<{ cmd: (c: string) => Promise<void>; close: () => void }> {
  const sock: Socket = createConnection(path);
  let out = '';
  sock.on('data', (d) => (out += d.toString()));
  await until('the QEMU monitor prompt', () => out.includes('(qemu)'));
  return {
    cmd: async (c) => {
      out = '';
      sock.write(c + '\n');
      await until(`monitor "${c}"`, () => out.includes('(qemu)'));
    },
    close: () => sock.destroy(),
  };
}

test(
  'VM paused and resumed (stop/cont): held eventq buffers survive, an edge while paused arrives after cont',
  { skip, timeout: 120_000 },
  async (t) => {
    const logs: string[] = [];
    const log = {
      log: (level: LogLevel, msg: string) => logs.push(`${level} ${msg}`),
      child: () => log,
    };
    const socket = join(dir, 'gpio.sock');
    const served = await ServedDevice.start({ socket, lines: 4 }, log);
    const wires = served.lines;
    assert.ok(wires, 'a simulated device');
    const monPath = join(dir, 'monitor.sock');
    let vm: GuestVm | null = null;
    try {
      vm = await GuestVm.boot({
        qemu: 'qemu10',
        socketPath: socket,
        extraArgs: ['-monitor', `unix:${monPath},server,nowait`],
      });
      const mon = await monitor(monPath);
      const line = () => served.gpio.snapshot()[2];
      await vm.background('gpiomon -n 3 gpiochip0 2 > /tmp/mon.txt 2>&1');
      await until('gpiomon to arm line 2', () => line().armed);

      wires.setInput(2, 1);
      await until(
        'the first event to be handled and the line re-armed',
        () => line().counters.delivered === 1 && line().armed,
      );

      await mon.cmd('stop');
      assert.equal(line().armed, true, 'the held buffer is kept while the rings are stopped');
      wires.setInput(2, 0);
      await sleep(300);
      assert.deepEqual(
        [line().latched, line().counters.delivered],
        [true, 1],
        'paused: the edge is latched, nothing written',
      );

      await mon.cmd('cont');
      await until(
        'the latched edge to be delivered after cont',
        () => line().counters.delivered === 2 && line().armed,
      );
      wires.setInput(2, 1);
      await until('the third event', () => line().counters.delivered === 3);
      mon.close();

      const r = await vm.run(
        'while [ ! -s /tmp/mon.txt ] || pidof gpiomon >/dev/null; do sleep 0.1; done; cat /tmp/mon.txt',
      );
      const events = r.out
        .trim()
        .split('\n')
        .map((l) => /(RISING|FALLING) EDGE offset: 2/.exec(l)?.[1] ?? l);
      assert.deepEqual(events, ['RISING', 'FALLING', 'RISING']);
      assert.ok(!logs.some((l) => l.startsWith('error')), logs.join('\n'));
    } catch (e) {
      t.diagnostic(`daemon log:\n${logs.join('\n')}\nguest:\n${vm?.transcript.slice(-3000) ?? ''}`);
      throw e;
    } finally {
      await vm?.kill();
      await served.close();
    }
  },
);
