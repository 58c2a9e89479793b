// `npm run model-check` as a user runs it: a child process, its output and its exit status.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'scripts/model-check.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });

test('--model v3 prints the re-entry trace and exits 1', () => {
  const r = run('--model', 'v3');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /VIOLATED: handler never runs while running or masked/);
  assert.match(
    r.stdout,
    /edge L0 → irq L0 → handler L0 start → mask\(flag\) → edge L0 → irq L0 → handler L0 start \(RE-ENTERED\)/,
  );
});

test('--model v3-ack explores every state and exits 0', () => {
  const r = run('--model', 'v3-ack', '--lines', '2');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /closed at depth \d+ \(every reachable state\), 576 states, 2256 transitions/);
});

test('a custom run of the real device and driver reports its bound and counts', () => {
  const r = run(
    '--lines',
    '1',
    '--depth',
    '5',
    '--types',
    'rising',
    '--ops',
    'disable',
    '--no-values',
    '--no-rings',
    '--no-reset',
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /lines 1, types rising, ops enable,disable, irq order any/);
  assert.match(r.stdout, /custom: depth 5\/5, \d+ states, \d+ transitions/);
});

test('the opt-in checks are named in the header', () => {
  const r = run('--lines', '1', '--depth', '3', '--irq-order', 'fifo');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /irq order fifo, driver diagnostics, stale-VALID check/);
});

test('bad arguments exit 2 with a message naming the flag', () => {
  const r = run('--depth', 'x');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--depth wants an integer >= 1, got "x"/);
  assert.equal(run('--types', 'sideways').status, 2);
  assert.equal(run('--model', 'v4').status, 2);
});
