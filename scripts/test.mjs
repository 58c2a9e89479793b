#!/usr/bin/env node
// Runs the test files under test/ with node's test runner (Node 20 has no --test globs).
// Usage: node scripts/test.mjs [path-prefix ...]   e.g. `node scripts/test.mjs test/device test/e2e`
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const prefixes = process.argv.slice(2).map((p) => p.replace(/\/$/, ''));
const files = readdirSync(join(root, 'test'), { recursive: true })
  .map((f) => join('test', String(f)))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => prefixes.length === 0 || prefixes.some((p) => f === p || f.startsWith(p + '/')))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${prefixes.join(' ')}`);
  process.exit(1);
}
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
