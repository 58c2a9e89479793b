// The README's board files and its user peripheral, read from README.md and run as written: the board
// file passes `vgpio serve`'s schema and builds a board, and the sensor module (my-sensor.mjs) answers
// a request from the TypeScript driver with the pulses its options ask for.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Board } from '../../src/board/board.ts';
import { openLoopbackBoard } from '../../src/compose/loopback-board.ts';
import { parseBoardFile, parseConfigFile } from '../../src/daemon/serve-config.ts';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The fenced blocks of `lang` in the README section under `heading`, up to the next heading of its level. */
function blocks(heading: string, lang: string): string[] {
  const start = readme.indexOf(`${heading}\n`);
  assert.ok(start >= 0, `README.md has no "${heading}"`);
  const level = heading.split(' ')[0];
  const rest = readme.slice(start + heading.length);
  const end = rest.search(new RegExp(`^${level} `, 'm'));
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]);
}

test('the README board file passes the --config schema and builds a board', async () => {
  const [file] = blocks('### Simulate the board: wires, pulls, peripherals, two VMs', 'json');
  const devices = parseConfigFile('README.md', file);
  assert.deepEqual(
    devices.map((d) => [d.socket, d.lines]),
    [
      ['/tmp/vm-a.sock', 6],
      ['/tmp/vm-b.sock', 2],
    ],
  );
  const spec = parseBoardFile('README.md', file);
  assert.ok(spec);
  const board = Board.create(spec);
  await board.start();
  assert.deepEqual(
    board.describe().map((p) => [p.name, p.type, p.running]),
    [
      ['user', 'button', true],
      ['tick', 'clock', true],
    ],
  );
  assert.equal(board.lines('a').input(1), 1, 'the pulled-up button, released');
  assert.throws(() => board.lines('b').setInput(0, 1), /driven by wires\[0\] from a:tx/);
  await board.close();
});

test("the README's user peripheral, run as written, answers a request with its pulses", async (t) => {
  const section = '#### A user peripheral';
  const [file] = blocks(section, 'json');
  const [source] = blocks(section, 'js');
  assert.ok(file && source, 'a json and a js block');
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-readme-board-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'my-sensor.mjs'), source);
  writeFileSync(join(dir, 'board.json'), file);
  // The board file as `vgpio serve` reads it; in-process, its device has no socket.
  assert.equal(parseConfigFile(join(dir, 'board.json'), file).length, 1);
  const spec = parseBoardFile(join(dir, 'board.json'), file);
  assert.ok(spec);
  const logged: string[] = [];
  const lb = await openLoopbackBoard(spec, { log: (_l, m) => logged.push(m) });
  t.after(() => lb.close());
  const { chip, lines } = lb.chips.get('board')!;
  const req = await chip.requestLines({ lines: { 3: { direction: 'output' }, 4: { direction: 'input' } } });
  const data: number[] = [];
  lines.onChange((c) => c.line === 4 && data.push(c.level));
  await req.setValue(3, 1);
  const deadline = performance.now() + 5000;
  while (data.length < 6 && performance.now() < deadline) await sleep(5);
  await sleep(20);
  assert.deepEqual(data, [1, 0, 1, 0, 1, 0], 'options.pulses = 3 pulses');
  assert.ok(
    logged.some((m) => /^request at \d+\.\d ms$/.test(m)),
    logged.join('\n'),
  );
  assert.equal(lb.board.describe()[0].running, true);
});
