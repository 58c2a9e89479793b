// A plain `vgpio serve --socket PATH` loads no surface: not the config schema (zod), the
// dashboard (ws), the board, MQTT, the trace writer or the host-chip code; each arrives with its
// option. Observed from the child itself: a module loader hook records every module it loads.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLI, ROOT } from '../daemon/daemon-harness.ts';

const hooks = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.VGPIO_MODULE_LOG, url + '\\n');
  return next(url, context);
}`;
const recorder = `import { register } from 'node:module';
register(${JSON.stringify('data:text/javascript,' + encodeURIComponent(hooks))});`;

const dir = mkdtempSync(join(tmpdir(), 'vgpio-modules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `vgpio serve ARGS` until it logs "serving" (or exits), stops it; the modules it loaded. */
async function modulesOf(
  name: string,
  args: string[],
): Promise<{ modules: string[]; code: number | null; stderr: string }> {
  const log = join(dir, `${name}.modules`);
  const child = spawn(
    process.execPath,
    ['--import', 'data:text/javascript,' + encodeURIComponent(recorder), ...CLI, 'serve', ...args],
    { cwd: ROOT, env: { ...process.env, VGPIO_MODULE_LOG: log }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (s: string) => {
      stderr += s;
      if (/ INFO {2}serving /.test(stderr)) resolve();
    });
    void closed.then(() => resolve());
  });
  child.kill('SIGTERM');
  const code = await closed;
  const modules = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  return { modules, code, stderr };
}

const SURFACES: Array<[string, RegExp]> = [
  ['zod (the config schema)', /\/node_modules\/zod\//],
  ['ws (the dashboard)', /\/node_modules\/ws\//],
  ['the config schema module', /\/src\/daemon\/serve-config\.ts$/],
  ['the dashboard', /\/src\/dashboard\//],
  ['the board', /\/src\/board\/board\.ts$/],
  ['MQTT', /\/src\/mqtt\//],
  ['the trace writer', /\/src\/trace\//],
  ['the surfaces', /\/src\/cli\/serve-surfaces\.ts$/],
];

test('serve --socket --lines --names --socket-mode: no surface module is loaded', async () => {
  const sock = join(dir, 'plain.sock');
  const r = await modulesOf('plain', [
    '--socket',
    sock,
    '--lines',
    '8',
    '--names',
    'a,b',
    '--socket-mode',
    '0600',
  ]);
  assert.match(r.stderr, / INFO {2}serving /, r.stderr);
  assert.ok(
    r.modules.some((m) => m.endsWith('/src/device/virtio-gpio-device.ts')),
    'the recorder saw the device model load',
  );
  for (const [what, re] of SURFACES)
    assert.deepEqual(
      r.modules.filter((m) => re.test(m)),
      [],
      `${what} loaded by a plain serve`,
    );
});

test('each option brings its module: --trace loads the trace writer, flags the plain check declines load the schema', async () => {
  const traced = await modulesOf('trace', ['--socket', join(dir, 't.sock'), '--trace', join(dir, 't.vcd')]);
  assert.match(traced.stderr, / INFO {2}serving /, traced.stderr);
  assert.ok(
    traced.modules.some((m) => /\/src\/trace\//.test(m)),
    'the trace writer',
  );
  assert.ok(
    traced.modules.some((m) => /\/src\/cli\/serve-surfaces\.ts$/.test(m)),
    'the surfaces',
  );
  // A repeated name: the schema decides, and words the error as before.
  const refused = await modulesOf('refused', [
    '--socket',
    join(dir, 'r.sock'),
    '--lines',
    '2',
    '--names',
    'a,a',
  ]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--names\[1\]: expected a unique name: "a" is also line 0/);
  assert.ok(
    refused.modules.some((m) => /\/node_modules\/zod\//.test(m)),
    'zod loaded for the check',
  );
});
