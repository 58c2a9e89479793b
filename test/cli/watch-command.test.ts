// `vgpio watch` as a child process against a running `vgpio serve`, with the project's own
// front-end as the guest: text and JSON lines, line filters, --num-events, Ctrl-C, and the daemon
// going away.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { Chip } from '../../src/driver/chip.ts';
import { CLI, Daemon, ROOT, runCli, startDaemon } from '../daemon/daemon-harness.ts';
import { openChip, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

const watch = async (...args: string[]): Promise<Daemon> => {
  const w = new Daemon(
    spawn(process.execPath, [...CLI, 'watch', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  await w.waitLog(/vgpio: watching .*; Ctrl-C ends\n/);
  return w;
};
/** stdout lines without the timestamp. */
const texts = (w: Daemon): string[] =>
  w.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      assert.match(l, /^\d+\.\d{9} /);
      return l.replace(/^\d+\.\d{9} /, '');
    });

describe('vgpio watch', { timeout: 90_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/watch.sock`;
  let daemon: Daemon;
  let chip: Chip;

  before(async () => {
    daemon = await startDaemon(['--socket', path, '--lines', '4', '--names', 'led,btn']);
    chip = await openChip(path);
  });
  after(async () => {
    await settle(chip?.close());
    await daemon?.stop('SIGKILL');
    tmp.cleanup();
  });

  test('text: one line per event, names and levels; Ctrl-C exits 0', async () => {
    const w = await watch(path);
    const req = await chip.requestLines({
      consumer: 'watch-test',
      lines: { 0: { direction: 'output', outputValue: 1 }, 1: { direction: 'input', edge: 'both' } },
    });
    await waitFor(() => w.stdout.includes('line 1 (btn): armed'), 'the armed line', 5000);
    assert.deepEqual(await runCli(['input', path, 'btn=1']), { code: 0, stdout: '', stderr: '' });
    await waitFor(() => w.stdout.includes('line 1 (btn): delivered'), 'the interrupt', 5000);
    await req.setValue(0, 0);
    await waitFor(() => w.stdout.includes('output high -> low'), 'the output change', 5000);
    w.child.kill('SIGINT');
    assert.deepEqual(await w.exited, { code: 0, signal: null });
    const got = texts(w);
    // Per line, in the order they happened (the driver configures the lines in its own order).
    const order = {
      led: ['direction output', 'output low -> high', 'output high -> low'],
      btn: [
        'direction input',
        'irq-type both',
        'armed (eventq buffer held: unmasked)',
        'input low -> high',
        'delivered (interrupt: masked until re-armed)',
        'armed (eventq buffer held: unmasked)',
      ],
    };
    assert.deepEqual(
      got.filter((l) => l.startsWith('line 0 (led): ')).map((l) => l.slice(14)),
      order.led,
    );
    assert.deepEqual(
      got.filter((l) => l.startsWith('line 1 (btn): ')).map((l) => l.slice(14)),
      order.btn,
    );
    assert.equal(w.stderr, `vgpio: watching ${path} (4 lines); Ctrl-C ends\n`);
    await req.release();
  });

  test('--json LINE --num-events N: JSON lines of that line only, exit 0 after N', async () => {
    const w = await watch(path, '3', '--json', '--num-events', '2');
    await runCli(['input', path, '3=1', '2=1', '3=0', '2=0', '3=1']);
    assert.deepEqual(await w.exited, { code: 0, signal: null });
    const events = w.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      events.map(({ event, line, name, from, to }) => ({ event, line, name, from, to })),
      [
        { event: 'input', line: 3, name: '', from: 'low', to: 'high' },
        { event: 'input', line: 3, name: '', from: 'high', to: 'low' },
      ],
    );
    assert.ok(events.every((e) => typeof e.timeNs === 'string' && /^\d+$/.test(e.timeNs)));
  });

  test('a LINE that does not exist: exit 2, the names listed', async () => {
    const r = await runCli(['watch', path, 'nosuch']);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `vgpio: no line "nosuch" on ${path}: offsets 0..3, names: 0 led, 1 btn\nusage: vgpio watch PATH [LINE...] [--json] [--num-events N]\n`,
    );
    const bad = await runCli(['watch', path, '--num-events', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--num-events must be a positive integer, not x/);
  });

  test('front-ends coming and going: connected, features, disconnected', async () => {
    const w = await watch(path);
    await chip.close();
    await waitFor(() => /device: front-end disconnected \(.+\)\n/.test(w.stdout), 'disconnected', 5000);
    chip = await openChip(path);
    await waitFor(() => /device: features 0x[0-9a-f]+ \(interrupts on\)\n/.test(w.stdout), 'features', 5000);
    w.child.kill('SIGINT');
    await w.exited;
    const kinds = texts(w).map((l) => l.replace(/ \(.*$/, ''));
    assert.deepEqual(
      kinds.filter((k) => k.startsWith('device: ')),
      ['device: front-end disconnected', 'device: front-end connected', 'device: features 0x130000001'],
    );
  });

  test('the daemon going away: exit 1 with a message', async () => {
    const w = await watch(path);
    await daemon.stop('SIGTERM');
    const exit = await w.exited;
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.match(w.stderr, new RegExp(`vgpio: ${path}: the daemon closed the control connection\\n$`));
  });
});
