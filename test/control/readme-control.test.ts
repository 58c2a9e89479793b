// The README's node:test example for `vgpio/control`, read from README.md and run as written (only
// its import points at this tree's src/control.ts) by `node --test`, against a daemon served in
// this process whose guest firmware is the project's own front-end: the button toggles the LED.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ServedDevice } from '../../src/daemon/served-device.ts';
import type { Chip } from '../../src/driver/chip.ts';
import { openChip, RecordingLogger, settle, tempDir } from '../transports/vhost-user/harness.ts';

const root = join(import.meta.dirname, '..', '..');

/** The ```ts block under "### Test a VM's software from node:test". */
function readmeExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf("### Test a VM's software from node:test"));
  const m = /^```ts\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(m, 'README.md has no ```ts block under the node:test heading');
  return m[1];
}

const tmp = tempDir();
const socket = `${tmp.dir}/vm.sock`;
let served: ServedDevice;
let firmware: Chip;

before(async () => {
  served = await ServedDevice.start({ socket, lines: 4, names: ['led', 'button'] }, new RecordingLogger());
  // The "VM": firmware that toggles the LED on each rising edge of the button.
  firmware = await openChip(socket);
  const req = await firmware.requestLines({
    consumer: 'firmware',
    lines: { 0: { direction: 'output', outputValue: 0 }, 1: { direction: 'input', edge: 'rising' } },
  });
  let led: 0 | 1 = 0;
  req.on('edge', () => {
    led = led ? 0 : 1;
    void req.setValue(0, led);
  });
});
after(async () => {
  await settle(firmware?.close());
  await settle(served?.close());
  tmp.cleanup();
});

test('the README example imports vgpio/control', () => {
  assert.match(readmeExample(), /from 'vgpio\/control';/);
});

test('README node:test example, run as written by node --test: passes against the VM', async () => {
  const file = join(tmp.dir, 'vm.test.mts');
  const entry = pathToFileURL(join(root, 'src', 'control.ts')).href;
  writeFileSync(file, readmeExample().replace(`from 'vgpio/control';`, `from '${entry}';`));
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], {
    cwd: root,
    // A run of its own, not a subtest of this runner's (NODE_TEST_CONTEXT would make it one).
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, VGPIO_SOCKET: socket },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (out += String(d)));
  const code = await new Promise<number | null>((r) => child.on('close', r)); // after its output is read
  assert.equal(code, 0, out);
  assert.match(out, /^ok 1 - pressing the button turns the LED on$/m);
  assert.match(out, /^# pass 1$/m);
  // The example's presses really reached the device: two toggles leave the LED off.
  assert.equal(served.lines?.output(0), 0);
  assert.equal(served.gpio.snapshot()[1].counters.delivered, 2);
});
