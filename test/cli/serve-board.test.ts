// `vgpio serve --config BOARD.json` as a real process: the board's peripherals run in the daemon,
// the control socket presses its button and refuses hand-setting a wired input, and broken user
// modules (one throws, one loops forever) are stopped and logged while the daemon keeps serving.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient, ControlError } from '../../src/control/control-client.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const VGPIO = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];

function serve(file: string): {
  child: ChildProcessWithoutNullStreams;
  log: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [...VGPIO, 'serve', '--config', file], { cwd: ROOT });
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => (log += c));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, log: () => log, exited };
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test(
  'a board in the daemon: button ops, a refused hand-set, broken modules stopped while it serves',
  { timeout: 180_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-serve-board-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'throws.mjs'),
      `export default function () { throw new Error('sensor on fire'); }`,
    );
    writeFileSync(
      join(dir, 'loops.mjs'),
      `export default function (io) { io.onLevel('poke', () => { for (;;) {} }); }`,
    );
    const socket = join(dir, 'd.sock');
    const file = join(dir, 'board.json');
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          {
            name: 'd',
            socket,
            lines: 6,
            names: ['out', 'in', 'btn', 'clk', 'poke', 'x'],
            pull: { btn: 'up' },
          },
        ],
        wires: [{ from: 'd:out', to: 'd:in' }],
        peripherals: [
          { type: 'button', name: 'b', line: 'd:btn' },
          { type: 'clock', name: 'c', line: 'd:clk', periodMs: 20 },
          { module: './throws.mjs', name: 'bad', lines: { x: 'd:x' } },
          { module: './loops.mjs', name: 'stuck', lines: { poke: 'd:poke' }, watchdogMs: 200 },
        ],
      }),
    );
    const d = serve(file);
    t.after(() => {
      d.child.kill('SIGKILL');
    });
    await until('the daemon to serve', () => / serving devices=1/.test(d.log()));
    assert.match(
      d.log(),
      /ERROR peripheral module stopped: it threw: Error: sensor on fire .*peripheral=bad/,
    );
    const ctl = await ControlClient.connect(socket);
    t.after(() => ctl.close());

    // The wired input cannot be set by hand; the button is pressed through the control socket.
    await assert.rejects(ctl.setInput('in', 1), (e: Error) => {
      assert.ok(e instanceof ControlError);
      assert.equal(
        e.message,
        'line 1 (in) of d is driven by wires[0] from d:out: it cannot also be set by hand',
      );
      return true;
    });
    const level = async (n: number) => (await ctl.status()).lines[n].level;
    assert.equal(await level(2), 'high');
    await ctl.button('btn', 'press');
    assert.equal(await level(2), 'low');
    await ctl.button('btn', 'click', 10);
    assert.equal(await level(2), 'high');
    await assert.rejects(ctl.button('x', 'press'), /press: line 5 has no button/);

    // A module stuck in a loop: poked, it never answers; the watchdog stops it and the daemon serves on.
    await ctl.setInput('poke', 1);
    await until('the watchdog', () => /did not answer within 200 ms/.test(d.log()), 10_000);
    const seen = new Set<string>();
    await until('the clock to keep ticking', async () => {
      seen.add(await level(3));
      return seen.size === 2;
    });
    await ctl.setInput('x', 1);
    assert.equal(await level(5), 'high', 'a line the stopped module had is free again');
    assert.equal(d.child.exitCode, null, 'still running');
    d.child.kill('SIGTERM');
    assert.equal(await d.exited, 0);
  },
);

/** `vgpio serve --config` on `board`: its exit status and stderr lines. */
async function refused(t: { after(fn: () => void): void }, board: object): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-serve-board-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'board.json');
  writeFileSync(file, JSON.stringify(board).replaceAll('DIR', dir));
  const d = serve(file);
  assert.equal(await d.exited, 2, d.log());
  return d.log().trim().split('\n');
}

test('a board file of the wrong shape does not start: each error at its JSON path', async (t) => {
  const lines = await refused(t, {
    devices: [{ name: 'd', socket: 'DIR/d.sock', lines: 2 }],
    peripherals: [
      { type: 'clock', line: 'd:1', periodMs: 0 },
      { type: 'lamp', line: 'd:0' },
    ],
  });
  assert.ok(
    lines.some((l) =>
      l.endsWith('board.json: peripherals[0].periodMs: expected a period of at least 0.01 ms'),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) =>
      l.endsWith(
        'board.json: peripherals[1].type: expected a peripheral type: button, clock, pattern, follower, encoder, or a "module"',
      ),
    ),
    lines.join('\n'),
  );
});

test('a board file whose references do not resolve does not start: each at its JSON path', async (t) => {
  const lines = await refused(t, {
    devices: [{ name: 'd', socket: 'DIR/d.sock', lines: 2, pull: { nope: 'up' } }],
    wires: [
      { from: 'd:0', to: 'e:1' },
      { from: 'd:0', to: 'd:1' },
    ],
    peripherals: [{ type: 'button', line: 'd:1' }],
  });
  for (const want of [
    'board.json: devices[0].pull.nope: no line named "nope" on d',
    'board.json: wires[0].to: no device "e" for "e:1" (devices: d)',
    'board.json: peripherals[0].line: d:1 is already driven by wires[1]: one driver per line, or put the lines on a shared net ("nets") for open-drain',
  ])
    assert.ok(
      lines.some((l) => l.endsWith(want)),
      `${want}\nnot in:\n${lines.join('\n')}`,
    );
});
