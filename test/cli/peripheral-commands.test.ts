// `vgpio button|clock|encoder` as child processes against `vgpio serve --config BOARD.json` (a real
// daemon process): exact stdout, stderr and exit codes, and the effect on the lines seen through a
// control client.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import { runCli, startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { settle, tempDir } from '../transports/vhost-user/harness.ts';

describe('vgpio button / clock / encoder', { timeout: 120_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/board.sock`;
  let daemon: Daemon;
  let ctl: ControlClient;

  before(async () => {
    const file = `${tmp.dir}/board.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          {
            name: 'd',
            socket: path,
            lines: 5,
            names: ['clk', 'knob-a', 'knob-b', 'btn', 'led'],
            pull: { btn: 'up' },
          },
        ],
        peripherals: [
          { type: 'clock', name: 'tick', line: 'd:clk', periodMs: 10, duty: 0.25, running: false },
          { type: 'encoder', name: 'knob', a: 'd:knob-a', b: 'd:knob-b' },
          { type: 'button', name: 'user', line: 'd:btn' },
        ],
      }),
    );
    daemon = await startDaemon(['--config', file]);
    ctl = await ControlClient.connect(path);
  });
  after(async () => {
    ctl?.close();
    await settle(daemon?.stop());
    tmp.cleanup();
  });

  test('clock: shown, started (the line ticks), stopped as JSON', async () => {
    assert.deepEqual(await runCli(['clock', path, 'clk']), {
      code: 0,
      stdout: 'clock tick: stopped, period 10 ms, duty 0.25\n',
      stderr: '',
    });
    assert.deepEqual(await runCli(['clock', path, 'clk', 'start']), {
      code: 0,
      stdout: 'clock tick: running, period 10 ms, duty 0.25\n',
      stderr: '',
    });
    // It ticks: the line goes low and high again (seen by another client of the daemon).
    await ctl.waitFor('clk', 'low', { timeoutMs: 10_000 });
    await ctl.waitFor('clk', 'high', { timeoutMs: 10_000 });
    const stopped = await runCli(['clock', path, '0', 'stop', '--json']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(JSON.parse(stopped.stdout), {
      name: 'tick',
      role: 'line',
      type: 'clock',
      running: false,
      periodMs: 10,
      duty: 0.25,
    });
    assert.equal((await ctl.status()).lines[0].level, 'low', 'stopped, it drives 0');
  });

  test('encoder: turned to a position from either line (a negative one after --), and shown', async () => {
    assert.deepEqual(await runCli(['encoder', path, 'knob-a', '5']), {
      code: 0,
      stdout: 'encoder knob: position 5, A=1 B=0\n',
      stderr: '',
    });
    assert.deepEqual(await runCli(['encoder', path, 'knob-b', '--', '-2']), {
      code: 0,
      stdout: 'encoder knob: position -2, A=1 B=1\n',
      stderr: '',
    });
    const lines = (await ctl.status()).lines;
    assert.deepEqual([lines[1].level, lines[2].level], ['high', 'high']);
    const shown = await runCli(['encoder', path, '2', '--json']);
    assert.equal(JSON.parse(shown.stdout).position, -2);
  });

  test('button: press holds the line against its pull; click releases it again', async () => {
    assert.deepEqual(await runCli(['button', path, 'btn', 'press']), {
      code: 0,
      stdout: 'button user: pressed\n',
      stderr: '',
    });
    assert.equal((await ctl.status()).lines[3].level, 'low');
    assert.deepEqual(await runCli(['button', path, 'btn', 'click', '--hold-ms', '20']), {
      code: 0,
      stdout: 'button user: released\n',
      stderr: '',
    });
    assert.equal((await ctl.status()).lines[3].level, 'high');
  });

  test('mistakes: usage errors exit 2 with the usage line; a line without the peripheral exits 1', async () => {
    assert.deepEqual(await runCli(['encoder', path, 'knob-a', 'far']), {
      code: 2,
      stdout: '',
      stderr:
        'vgpio: POSITION must be an integer in -2147483648..2147483647, not "far"\n' +
        'usage: vgpio encoder PATH LINE [POSITION] [--json]\n',
    });
    assert.deepEqual(await runCli(['clock', path, 'clk', 'go']), {
      code: 2,
      stdout: '',
      stderr: 'vgpio: action "go" is not start or stop\nusage: vgpio clock PATH LINE [start|stop] [--json]\n',
    });
    assert.deepEqual(await runCli(['clock', path, 'led', 'start']), {
      code: 1,
      stdout: '',
      stderr: 'vgpio: clock: line 4 has no clock (a board file\'s "clock" peripheral)\n',
    });
    const help = await runCli(['encoder', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: vgpio encoder PATH LINE \[POSITION\] \[--json\]\n\n/);
    assert.match(help.stdout, /-- -4/);
    assert.equal((await ctl.status()).lines[0].peripheral?.type, 'clock', 'the daemon goes on');
  });

  test('vgpio status: a PERIPHERAL column on a board names what sits on each line', async () => {
    const r = await runCli(['status', path]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trimEnd().split('\n');
    const header = rows.find((l) => l.startsWith('LINE'));
    assert.ok(header?.endsWith('  PERIPHERAL'), header);
    const cells = (line: number) => rows.find((l) => l.startsWith(`${line} `)) ?? '';
    assert.match(cells(0), / {2}clock tick: stopped, period 10 ms, duty 0\.25$/);
    assert.match(cells(1), / {2}encoder knob: position -2, A=1 B=1$/);
    assert.match(cells(3), / {2}button user: released$/);
    assert.match(cells(4), / {2}-$/);
  });
});
