// End to end: a real Linux guest (gpio-virtio, libgpiod 1.6 tools, QEMU 10 under TCG) whose lines are
// on a real Mosquitto broker through vgpio serve's mqtt section: the guest's gpioset shows up on
// PREFIX/DEVICE/LINE/state, and mosquitto_pub on .../set reaches the guest's gpiomon. One boot.
// Needs the guest cache (test/e2e/guest/build-guest.sh) and mosquitto; skipped without them.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient } from '../../src/control/control-client.ts';
import { startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { HAVE_MOSQUITTO, Mosquitto } from '../mqtt/mosquitto.ts';
import { Recorder } from '../mqtt/mqtt-recorder.ts';
import { tempDir } from '../transports/vhost-user/harness.ts';
import { GuestVm, tryLoadGuestEnv } from './guest/guest-vm.ts';

const env = await tryLoadGuestEnv();
const skip = !env
  ? 'guest cache missing: run test/e2e/guest/build-guest.sh'
  : !HAVE_MOSQUITTO
    ? 'mosquitto is not installed (apt-get install mosquitto mosquitto-clients)'
    : false;
const CHIP = 'gpiochip0';
const P = 'lab/guest/vm';

describe('a real guest on an MQTT broker (QEMU 10, TCG)', { skip, timeout: 300_000 }, () => {
  const tmp = tempDir();
  const sock = `${tmp.dir}/vm.sock`;
  let broker: Mosquitto;
  let daemon: Daemon;
  let vm: GuestVm;
  let ctl: ControlClient;
  let rec: Recorder;

  before(async () => {
    broker = await Mosquitto.start(tmp.dir);
    const file = `${tmp.dir}/board.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [{ socket: sock, name: 'vm', lines: 4, names: ['led', 'button'] }],
        mqtt: { url: broker.url, prefix: 'lab/guest', commands: ['vm:button'] },
      }),
    );
    rec = await Recorder.connect(broker.url, ['lab/guest/#']);
    daemon = await startDaemon(['--config', file]);
    await daemon.waitLog(/mqtt connected/);
    ctl = await ControlClient.connect(sock);
    vm = await GuestVm.boot({ qemu: 'qemu10', socketPath: sock, bootTimeoutMs: 120_000 });
  });
  after(async () => {
    await vm?.kill();
    ctl?.close();
    await daemon?.stop();
    await rec?.close();
    await broker?.stop();
    tmp.cleanup();
  });

  const diagnose = async (t: TestContext, body: () => Promise<void>) => {
    try {
      await body();
    } catch (e) {
      t.diagnostic(`vgpio serve log:\n${daemon.stderr}`);
      t.diagnostic(`guest console:\n${vm?.transcript ?? ''}`);
      throw e;
    }
  };

  it("the guest's gpioset shows up on state, config and event", async (t) => {
    await diagnose(t, async () => {
      const r = await vm.run(`gpioset -m time -u 500000 ${CHIP} 0=1`, 30_000);
      assert.equal(r.code, 0, r.out);
      await rec.until(() => rec.on(`${P}/0/state`).some((m) => m.payload === '1'), 'state 1 for line 0');
      assert.ok(
        rec.on(`${P}/0/config`).some((m) => JSON.parse(m.payload).direction === 'output'),
        'config showed the line as an output',
      );
      const ev = rec.on(`${P}/0/event`).map((m) => JSON.parse(m.payload) as { type: string; level: number });
      assert.deepEqual(ev[0], { ...ev[0], type: 'output', level: 1 });
      // gpioset (libgpiod 1.6) lets go of the line when it exits: it reads its default level again.
      await rec.value(`${P}/0/state`, '0');
    });
  });

  it("mosquitto_pub on set reaches the guest's gpiomon, edge for edge", async (t) => {
    await diagnose(t, async () => {
      const mon = await vm.background(`gpiomon -n 2 ${CHIP} 1 >/tmp/mon 2>&1`);
      const deadline = Date.now() + 20_000;
      while (!(await ctl.status()).lines[1].armed) {
        if (Date.now() > deadline) assert.fail('the guest never armed line 1');
        await sleep(20);
      }
      for (const v of ['1', '0']) {
        const pub = spawnSync(
          'mosquitto_pub',
          ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', `${P}/1/set`, '-m', v],
          {
            encoding: 'utf8',
          },
        );
        assert.equal(pub.status, 0, pub.stderr);
        await rec.value(`${P}/1/state`, v);
      }
      const r = await vm.run(
        `i=0; while kill -0 ${mon} 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && break; sleep 0.1; done; cat /tmp/mon`,
        30_000,
      );
      const edges = r.out
        .split('\n')
        .filter((l) => l.startsWith('event:'))
        .map((l) => /^event: +(RISING|FALLING) EDGE offset: (\d+)/.exec(l)?.slice(1).join('@'));
      assert.deepEqual(edges, ['RISING@1', 'FALLING@1'], r.out);
      await rec.until(
        () => rec.on(`${P}/1/event`).filter((m) => m.payload.includes('"interrupt"')).length >= 2,
        'the two interrupts published',
      );
    });
  });
});
