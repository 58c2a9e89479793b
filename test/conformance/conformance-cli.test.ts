// `vgpio conformance` as a user runs it: a real process against real sockets; exit statuses
// 0 pass, 1 FAIL, 2 usage, 3 harness error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { VhostUserServer } from '../../src/transports/vhost-user/server.ts';
import { RecreatingServer } from './recreating-server.ts';

const cli = join(import.meta.dirname, '../../src/cli/main.ts'); // through tsx: no build needed
const dir = mkdtempSync(join(tmpdir(), 'vgpio-conf-cli-'));
const device = () => new VirtioGpioDevice(new GpioDevice(new SimulatedLines(4)));
const plain = new VhostUserServer(device(), { socketPath: join(dir, 'plain.sock'), log: silentLogger });
const recreating = new RecreatingServer(join(dir, 'recreating.sock'), device());
after(() => {
  plain.close();
  recreating.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process, which serves the back-ends. */
const vgpio = (...args: string[]): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', cli, 'conformance', ...args],
      { timeout: 120_000 },
      (e, stdout, stderr) =>
        resolve({ status: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }),
    );
  });

test('a socket nobody listens on: harness error after --wait-ms, exit 3, no rule rows', async () => {
  const r = await vgpio('--socket', join(dir, 'nope.sock'), '--wait-ms', '200');
  assert.equal(r.status, 3, r.stdout + r.stderr);
  assert.match(r.stderr, /harness error: back-end not listening at .*nope\.sock within 200 ms: .*ENOENT/);
  assert.doesNotMatch(r.stdout, /FAIL/);
});

test('a failing --drive command: harness error naming the rule and the command, exit 3', async () => {
  const r = await vgpio(
    '--socket',
    join(dir, 'plain.sock'),
    '--drive',
    'echo nope >&2; exit 7',
    '--only',
    'irq.edge',
  );
  assert.equal(r.status, 3, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /harness error during irq\.edge: drive command "echo nope >&2; exit 7" exited 7: nope/,
  );
  assert.doesNotMatch(r.stdout, /FAIL/);
});

test('--only matching no rule is a usage error, exit 2', async () => {
  const r = await vgpio('--socket', join(dir, 'plain.sock'), '--only', 'nosuch,other');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--only nosuch,other matches no rule; rules: config\.fields, names\.block/);
  assert.equal(r.stdout, '');
});

test('against a back-end that re-creates its socket: exit 0, the warning up front, 100 columns', async () => {
  const r = await vgpio('--socket', join(dir, 'recreating.sock'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[1], /^note: this run changes the target's line state/);
  assert.match(r.stdout, /\n\d+ passed, 0 failed, 0 warnings, \d+ skipped\n$/);
  assert.match(r.stdout, /irq\.edge\s+SKIP/); // no control endpoint and no --drive
  assert.doesNotMatch(r.stdout, /connect/);
  const wide = lines.filter((l) => l.length > 100);
  assert.deepEqual(wide, []);
});

test('--json: parseable, with clause, quote and harnessError null; the note goes to stderr', async () => {
  const r = await vgpio('--socket', join(dir, 'plain.sock'), '--only', 'irq.disable,names', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.harnessError, null);
  assert.deepEqual(
    j.results.map(
      (x: { id: string; outcome: string; strength: string }) => `${x.id}:${x.outcome}:${x.strength}`,
    ),
    ['names.block:PASS:MUST', 'irq.disable-returns:PASS:MUST'],
  );
  assert.match(j.results[1].clause, /^virtio 1\.2 §5\.18\.7\.3$/);
  assert.match(j.results[1].quote, /MUST return the buffers/);
  assert.match(r.stderr, /changes the line state/);
});
