// End to end, one boot: a real Linux guest (gpio-virtio, libgpiod 1.6) under QEMU 10 against
// `vgpio serve`, while `vgpio watch` and `vgpio record` run beside it as separate processes. The
// guest's gpioset and gpiomon show up in the watch output live, and the VCD recorded meanwhile is
// read back by sigrok-cli with the transitions that happened (levels and the armed window).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import { CLI, Daemon, ROOT, startDaemon } from '../daemon/daemon-harness.ts';
import { tempDir, waitFor } from '../transports/vhost-user/harness.ts';
import { noSigrok, readVcd, transitions } from '../trace/sigrok.ts';
import { GuestVm, tryLoadGuestEnv } from './guest/guest-vm.ts';

const env = await tryLoadGuestEnv();
const skip = env ? noSigrok : 'guest cache missing: run test/e2e/guest/build-guest.sh';
const CHIP = 'gpiochip0';
const tmp = tempDir();
after(() => tmp.cleanup());

const cli = (...args: string[]) =>
  new Daemon(spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
const count = (w: Daemon, text: string) => w.stdout.split('\n').filter((l) => l.endsWith(text)).length;

test(
  'vgpio watch shows the guest live; the VCD recorded meanwhile reads back right',
  { skip, timeout: 240_000 },
  async (t) => {
    const socket = `${tmp.dir}/gpio.sock`;
    const vcd = `${tmp.dir}/guest.vcd`;
    const daemon = await startDaemon(['--socket', socket, '--lines', '8', '--names', 'led,button']);
    const watch = cli('watch', socket);
    const record = cli('record', socket, '-o', vcd);
    let vm: GuestVm | null = null;
    const host = await ControlClient.connect(socket);
    try {
      await watch.waitLog(/watching .*; Ctrl-C ends/);
      await waitFor(() => existsSync(vcd), 'the recording to start', 10_000);
      const t0 = performance.now();
      vm = await GuestVm.boot({ qemu: 'qemu10', socketPath: socket, bootTimeoutMs: 120_000 });
      t.diagnostic(`boot to shell ${Math.round(performance.now() - t0)} ms`);
      await waitFor(() => watch.stdout.includes('device: front-end connected'), 'watch: connected', 10_000);
      await waitFor(
        () => /device: features 0x[0-9a-f]+ \(interrupts on\)/.test(watch.stdout),
        'watch: features',
        10_000,
      );

      // gpioset in the guest: the host sees the output change as it happens.
      const set = await vm.background(`gpioset -m signal ${CHIP} 0=1`);
      await waitFor(
        () => watch.stdout.includes('line 0 (led): output low -> high'),
        'watch: gpioset',
        15_000,
      );
      assert.equal(await host.getOutput('led'), 1);
      assert.equal((await vm.run(`kill ${set}`)).code, 0);
      await waitFor(
        () => watch.stdout.includes('line 0 (led): direction none'),
        'watch: gpioset released',
        15_000,
      );

      // gpiomon in the guest: armed, each host edge delivered, re-armed after the handler ran.
      await vm.background(`gpiomon -n 4 ${CHIP} 1 > /tmp/mon.txt 2>&1`);
      await waitFor(
        () => watch.stdout.includes('line 1 (button): irq-type both'),
        'watch: gpiomon irq-type',
        15_000,
      );
      for (let i = 0; i < 4; i++) {
        await waitFor(
          () => count(watch, 'line 1 (button): armed (eventq buffer held: unmasked)') > i,
          `armed #${i + 1}`,
          15_000,
        );
        await host.setInput('button', i % 2 === 0 ? 1 : 0);
        await waitFor(
          () => count(watch, 'line 1 (button): delivered (interrupt: masked until re-armed)') > i,
          `delivered #${i + 1}`,
          15_000,
        );
      }
      await waitFor(
        () => watch.stdout.includes('line 1 (button): irq-type none'),
        'watch: gpiomon exits, releases',
        15_000,
      );
      const mon = (await vm.run('cat /tmp/mon.txt')).out.trim().split('\n');
      assert.deepEqual(
        mon.map((l) => /^event: +(RISING|FALLING) EDGE offset: 1 /.exec(l)?.[1]),
        ['RISING', 'FALLING', 'RISING', 'FALLING'],
      );
    } finally {
      host.close();
      record.child.kill('SIGINT');
      watch.child.kill('SIGINT');
      await vm?.shutdown();
      await record.exited;
      await watch.exited;
      await daemon.stop('SIGTERM');
    }
    assert.deepEqual(watch.exit, { code: 0, signal: null }, watch.stderr);
    assert.deepEqual(record.exit, { code: 0, signal: null }, record.stderr);
    t.diagnostic(`watch printed ${watch.stdout.split('\n').length - 1} events`);

    // The recording, read by an independent tool.
    assert.match(readFileSync(vcd, 'utf8'), /\$timescale 1 ns \$end/);
    const trace = readVcd(vcd);
    assert.deepEqual(transitions(trace, 'led'), [0, 1, 0]);
    assert.deepEqual(transitions(trace, 'button'), [0, 1, 0, 1, 0]);
    const armed = transitions(trace, 'button_armed');
    // Masked at each of the four interrupts, armed again after each handler; released at the end.
    assert.ok(armed.length >= 9 && armed[0] === 0 && armed.at(-1) === 0, JSON.stringify(armed));
    // Each level change of the button happened while armed: read the states row by row.
    const b = trace.channels.indexOf('button');
    const a = trace.channels.indexOf('button_armed');
    let edgesWhileArmed = 0;
    for (let i = 1; i < trace.states.length; i++)
      if (trace.states[i][b] !== trace.states[i - 1][b] && trace.states[i - 1][a] === 1) edgesWhileArmed++;
    assert.equal(edgesWhileArmed, 4, 'every host edge found the line armed');
  },
);
