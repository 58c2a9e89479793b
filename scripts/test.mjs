#!/usr/bin/env node
// Runs the test files under test/ with node's test runner (Node 20 has no --test globs).
// Usage: node scripts/test.mjs [--guest] [path-prefix ...]   e.g. `node scripts/test.mjs test/device test/e2e`
//   --guest  first build (or reuse) the real-guest environment: test/e2e/guest/build-guest.sh (root only)
// Not root and no guest built: the guest tests (test/e2e) are left out, with a one-line notice;
// everything else runs. As root (CI) nothing is left out.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const prepareGuest = args.includes('--guest');
const prefixes = args.filter((a) => a !== '--guest').map((p) => p.replace(/\/$/, ''));
const isRoot = process.getuid?.() === 0;
const guestEnv = join(process.env.VGPIO_GUEST_CACHE || join(homedir(), '.cache', 'vgpio-guest'), 'env.json');

if (prepareGuest && isRoot) {
  const b = spawnSync('bash', [join(root, 'test/e2e/guest/build-guest.sh')], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (b.status !== 0) {
    console.error(`building the guest failed (exit ${b.status ?? b.signal}): see the messages above`);
    process.exit(1);
  }
}
const skipGuest = !isRoot && !existsSync(guestEnv);

let files = readdirSync(join(root, 'test'), { recursive: true })
  .map((f) => join('test', String(f)))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => prefixes.length === 0 || prefixes.some((p) => f === p || f.startsWith(p + '/')))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${prefixes.join(' ')}`);
  process.exit(1);
}
if (skipGuest && files.some((f) => f.startsWith('test/e2e/'))) {
  files = files.filter((f) => !f.startsWith('test/e2e/'));
  console.log(
    'NOTE: guest tests (test/e2e) skipped: not root, and no guest is built (building it needs apt-get: ' +
      'run `sudo npm test` once); every other test runs.',
  );
}
if (files.length === 0) process.exit(0); // only guest tests were asked for
const r = spawnSync(
  process.execPath,
  // A test that leaves a handle open, or hangs, must not stall CI: per-test timeout, forced exit,
  // and a watchdog on the whole run.
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-timeout=300000',
    '--test-force-exit',
    '--test-reporter=spec',
    ...files,
  ],
  { cwd: root, stdio: 'inherit', timeout: 40 * 60 * 1000, killSignal: 'SIGKILL' },
);
if (r.error) console.error(`test run aborted: ${r.error.message}`);
process.exit(r.status ?? 1);
