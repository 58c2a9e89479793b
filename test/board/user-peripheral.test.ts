// User peripherals: ES modules run in worker threads behind the PeripheralIo API. A module that
// answers a request, and modules that throw, hang in a synchronous loop, never finish loading or send
// nonsense: each is stopped and logged while the board and its other peripherals keep running.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openLoopbackBoard, type LoopbackBoard } from '../../src/compose/loopback-board.ts';
import type { BoardSpec } from '../../src/board/board-schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'vgpio-user-peripheral-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function moduleFile(name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(file, source);
  return `./${name}`;
}

interface Logged {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

async function open(t: { after(fn: () => Promise<void>): void }, spec: Omit<BoardSpec, 'baseDir'>) {
  const log: Logged[] = [];
  const lb = await openLoopbackBoard(
    { ...spec, baseDir: dir },
    { log: (level, message, fields) => log.push({ level, message, fields }) },
  );
  t.after(() => lb.close());
  return { lb, log };
}

const waitUntil = async (what: string, check: () => boolean, timeoutMs = 10_000) => {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
};

const running = (lb: LoopbackBoard, name: string) =>
  lb.board.describe().find((p) => p.name === name)?.running;

describe('user peripherals', () => {
  test('a module answers each rising edge on req with `pulses` pulses on data, on board time', async (t) => {
    const mod = moduleFile(
      'answer.mjs',
      `export default function (io, options) {
        io.set('data', 0);
        io.onLevel('req', (level) => {
          if (level !== 1) return;
          for (let i = 0; i < options.pulses; i++) {
            io.after(2 * i + 1, () => io.set('data', 1));
            io.after(2 * i + 2, () => io.set('data', 0));
          }
        });
      }`,
    );
    const { lb } = await open(t, {
      devices: [{ name: 'd', lines: 2, names: ['req', 'data'] }],
      peripherals: [
        {
          module: mod,
          name: 'sensor',
          lines: { req: 'd:req', data: 'd:data' },
          options: { pulses: 3 },
        } as never,
      ],
    });
    const { chip, lines } = lb.chips.get('d')!;
    const req = await chip.requestLines({
      lines: { 0: { direction: 'output' }, 1: { direction: 'input', edge: 'both' } },
    });
    const sensed: number[] = [];
    lines.onChange((c) => c.line === 1 && sensed.push(c.level));
    const edges: string[] = [];
    req.setEdgeHandler((e) => {
      edges.push(e.type);
    });
    await req.setValue(0, 1);
    await waitUntil('six changes on data', () => sensed.length >= 6);
    await sleep(50);
    assert.deepEqual(sensed, [1, 0, 1, 0, 1, 0]);
    // The driver took interrupts for them (edges 1 ms apart may coalesce inside one masked window).
    assert.ok(edges.length >= 1 && edges.length <= 6, edges.join());
    assert.equal(running(lb, 'sensor'), true);
  });

  test('a module that throws while loading is stopped and logged; a clock beside it keeps ticking', async (t) => {
    const mod = moduleFile('throws.mjs', `export default function () { throw new Error('sensor on fire'); }`);
    const { lb, log } = await open(t, {
      devices: [{ name: 'd', lines: 2 }],
      peripherals: [
        { module: mod, name: 'bad', lines: { x: 'd:0' } } as never,
        { type: 'clock', name: 'clk', line: 'd:1', periodMs: 4 },
      ],
    });
    assert.equal(running(lb, 'bad'), false);
    const stopped = log.find(
      (l) =>
        l.level === 'error' && /peripheral module stopped: it threw: Error: sensor on fire/.test(l.message),
    );
    assert.ok(stopped, JSON.stringify(log));
    assert.equal(stopped.fields?.peripheral, 'bad');
    let edges = 0;
    lb.chips.get('d')!.lines.onChange((c) => c.line === 1 && edges++);
    await sleep(40);
    assert.ok(edges >= 8, `the clock made ${edges} edges in 40 ms`);
  });

  test('a module that throws in a handler is stopped; its line is let go (reads its pull)', async (t) => {
    const mod = moduleFile(
      'throws-later.mjs',
      `export default function (io) {
        io.set('out', 0);
        io.onLevel('in', () => { throw new RangeError('bad reading'); });
      }`,
    );
    const { lb, log } = await open(t, {
      devices: [{ name: 'd', lines: 2, pull: { '1': 'up' } }],
      peripherals: [{ module: mod, name: 'm', lines: { in: 'd:0', out: 'd:1' } } as never],
    });
    const lines = lb.chips.get('d')!.lines;
    await waitUntil('the module to drive out', () => lines.input(1) === 0);
    lines.setInput(0, 1);
    await waitUntil('the module to stop', () => running(lb, 'm') === false);
    assert.ok(
      log.some((l) => /it threw: RangeError: bad reading/.test(l.message)),
      JSON.stringify(log),
    );
    assert.equal(lines.input(1), 1, 'let go: the pull-up');
    lines.setInput(0, 0); // the board still serves
  });

  test('a module stuck in a synchronous loop is terminated by the watchdog; the event loop never stalls', async (t) => {
    const mod = moduleFile(
      'hangs.mjs',
      `export default function (io) {
        io.onLevel('in', () => { for (;;) {} });
      }`,
    );
    const { lb, log } = await open(t, {
      devices: [{ name: 'd', lines: 2 }],
      peripherals: [
        { module: mod, name: 'stuck', lines: { in: 'd:0' }, watchdogMs: 200 } as never,
        { type: 'clock', name: 'clk', line: 'd:1', periodMs: 10 },
      ],
    });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    t.after(() => clearInterval(timer));
    const t0 = performance.now();
    lb.chips.get('d')!.lines.setInput(0, 1);
    await waitUntil('the watchdog', () => running(lb, 'stuck') === false, 5000);
    const took = performance.now() - t0;
    assert.ok(took >= 190 && took < 2000, `stopped after ${took} ms`);
    assert.ok(ticks >= took / 10 / 3, `the main thread kept running: ${ticks} ticks in ${took} ms`);
    assert.ok(
      log.some((l) => /did not answer within 200 ms/.test(l.message)),
      JSON.stringify(log),
    );
    assert.equal(running(lb, 'clk'), true);
  });

  test('a module that never finishes loading is terminated', { timeout: 20_000 }, async (t) => {
    const mod = moduleFile('never-loads.mjs', `for (;;) {}\nexport default function () {}`);
    const t0 = performance.now();
    const { lb, log } = await open(t, {
      devices: [{ name: 'd', lines: 1 }],
      peripherals: [{ module: mod, name: 'slow', lines: { x: 'd:0' } } as never],
    });
    assert.ok(performance.now() - t0 >= 4900);
    assert.equal(running(lb, 'slow'), false);
    assert.ok(
      log.some((l) => /did not finish loading/.test(l.message)),
      JSON.stringify(log),
    );
  });

  test('a module that sets a line it does not have, or a level that is no level, is stopped', async (t) => {
    const role = moduleFile(
      'bad-role.mjs',
      `export default function (io) { io.after(1, () => io.set('nope', 1)); }`,
    );
    const value = moduleFile('bad-level.mjs', `export default function (io) { io.set('x', 7); }`);
    const { lb, log } = await open(t, {
      devices: [{ name: 'd', lines: 2 }],
      peripherals: [
        { module: role, name: 'role', lines: { x: 'd:0' } } as never,
        { module: value, name: 'value', lines: { x: 'd:1' } } as never,
      ],
    });
    await waitUntil('both to stop', () => running(lb, 'role') === false && running(lb, 'value') === false);
    const messages = log
      .filter((l) => l.level === 'error')
      .map((l) => l.message)
      .join('\n');
    assert.match(messages, /no line "nope" \(its lines: x\)/);
    assert.match(messages, /set\("x", 7\): expected 0, 1 or null/);
  });
});
