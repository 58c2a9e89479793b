// `vgpio record` and `vgpio serve --trace` as child processes, with the project's own front-end as
// the guest: the VCD files are read back by sigrok-cli and their transitions match what was driven
// (host inputs, guest outputs, and the armed window of an interrupt line).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient } from '../../src/control/control-client.ts';
import { CLI, Daemon, ROOT, runCli, startDaemon } from '../daemon/daemon-harness.ts';
import { openChip, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';
import { noSigrok, readVcd, transitions } from '../trace/sigrok.ts';

describe('VCD traces from the CLI', { timeout: 90_000 }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  /** A guest that drives led (0) and takes interrupts on btn (1); the host pulses btn 3 times. */
  async function exercise(path: string): Promise<void> {
    const chip = await openChip(path);
    const host = await ControlClient.connect(path);
    try {
      const req = await chip.requestLines({
        consumer: 'trace-test',
        lines: { 0: { direction: 'output', outputValue: 0 }, 1: { direction: 'input', edge: 'rising' } },
      });
      let edges = 0;
      req.on('edge', () => edges++);
      for (let i = 0; i < 3; i++) {
        await sleep(30);
        await host.setInput('btn', 1);
        await waitFor(() => edges === i + 1, `edge ${i + 1}`);
        await req.setValue(0, i % 2 === 0 ? 1 : 0);
        await host.setInput('btn', 0);
      }
      await sleep(30);
      await req.release();
    } finally {
      host.close();
      await settle(chip.close());
    }
  }

  function check(file: string, scope: string): void {
    const text = readFileSync(file, 'utf8');
    assert.match(text, /\$timescale 1 ns \$end/);
    assert.match(text, new RegExp(`\\$scope module ${scope} \\$end`));
    assert.match(text, /\$var event 1 \S+ btn_irq \$end/);
    const t = readVcd(file);
    assert.deepEqual(transitions(t, 'btn'), [0, 1, 0, 1, 0, 1, 0]);
    // The release makes led an unconfigured line again: it reads the (low) input level.
    assert.deepEqual(transitions(t, 'led'), [0, 1, 0, 1, 0]);
    // Armed once the driver queues the buffer; masked at each interrupt; armed again after it ran;
    // the release hands the buffer back (masked).
    assert.deepEqual(transitions(t, 'btn_armed'), [0, 1, 0, 1, 0, 1, 0, 1, 0]);
    assert.deepEqual(transitions(t, 'led_armed'), [0]);
  }

  test(
    'vgpio record PATH -o FILE until Ctrl-C; --duration S stops by itself',
    { skip: noSigrok },
    async () => {
      const path = `${tmp.dir}/rec.sock`;
      const file = `${tmp.dir}/rec.vcd`;
      const daemon = await startDaemon(['--socket', path, '--lines', '3', '--names', 'led,btn']);
      try {
        const rec = new Daemon(
          spawn(process.execPath, [...CLI, 'record', path, '-o', file], {
            cwd: ROOT,
            stdio: ['ignore', 'pipe', 'pipe'],
          }),
        );
        await waitFor(() => existsSync(file), 'the trace file', 5000);
        await exercise(path);
        rec.child.kill('SIGINT');
        assert.deepEqual(await rec.exited, { code: 0, signal: null }, rec.stderr);
        assert.match(rec.stderr, /^vgpio: recorded 1 device\(s\) to .*rec\.vcd \(\d+ bytes\)\n$/);
        check(file, 'rec');

        const short = `${tmp.dir}/short.vcd`;
        const t0 = performance.now();
        const r = await runCli(['record', path, '-o', short, '--duration', '0.5']);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(performance.now() - t0 < 8000);
        const end = /#(\d+)\n$/.exec(readFileSync(short, 'utf8'));
        assert.ok(
          end && Number(end[1]) >= 0.5e9 && Number(end[1]) < 2e9,
          `ends after --duration: ${end?.[1]}`,
        );
      } finally {
        await daemon.stop('SIGKILL');
      }
    },
  );

  test(
    'vgpio serve --trace FILE: written while serving, complete after SIGTERM',
    { skip: noSigrok },
    async () => {
      const path = `${tmp.dir}/srv.sock`;
      const file = `${tmp.dir}/srv.vcd`;
      const daemon = await startDaemon([
        '--socket',
        path,
        '--lines',
        '3',
        '--names',
        'led,btn',
        '--trace',
        file,
      ]);
      await exercise(path);
      assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null });
      check(file, 'srv');
    },
  );

  test('usage: -o is required; --duration must be positive', async () => {
    const a = await runCli(['record', `${tmp.dir}/x.sock`]);
    assert.equal(a.code, 2);
    assert.match(
      a.stderr,
      /^vgpio: -o FILE\.vcd is required\nusage: vgpio record PATH\.\.\. -o FILE\.vcd \[--duration S\]\n$/,
    );
    const b = await runCli(['record', `${tmp.dir}/x.sock`, '-o', `${tmp.dir}/x.vcd`, '--duration', '0']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--duration must be seconds > 0, not 0/);
  });
});
