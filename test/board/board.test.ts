// The board's wires, pulls and shared nets, seen by the TypeScript driver over the loopback
// transport (openLoopbackBoard): what a guest would read, and what it cannot do by hand.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BoardDrivenError } from '../../src/board/board-lines.ts';
import { Board, BoardError } from '../../src/board/board.ts';
import { openLoopbackBoard } from '../../src/compose/loopback-board.ts';

const two = {
  devices: [
    { name: 'a', lines: 4, names: ['out', 'in', 'x', 'y'] },
    { name: 'b', lines: 4 },
  ],
};

describe('wires', () => {
  test('an output wired to an input on the same device: the input reads what the output drives', async (t) => {
    const lb = await openLoopbackBoard({ ...two, wires: [{ from: 'a:out', to: 'a:in' }] });
    t.after(() => lb.close());
    const req = await lb.chips.get('a')!.chip.requestLines({
      lines: { 0: { direction: 'output', outputValue: 1 }, 1: { direction: 'input' } },
    });
    assert.equal(await req.getValue(1), 1);
    await req.setValue(0, 0);
    assert.equal(await req.getValue(1), 0);
    await req.setValue(0, 1);
    assert.equal(await req.getValue(1), 1);
  });

  test('an output drives inputs on two devices; edges arrive at the other chip in order', async (t) => {
    const lb = await openLoopbackBoard({ ...two, wires: [{ from: 'a:0', to: ['b:2', 'a:3'] }] });
    t.after(() => lb.close());
    const out = await lb.chips.get('a')!.chip.requestLines({ lines: { 0: { direction: 'output' } } });
    const mon = await lb.chips
      .get('b')!
      .chip.requestLines({ lines: { 2: { direction: 'input', edge: 'both' } } });
    const events = mon.edgeEvents();
    const seen: string[] = [];
    const got = (async () => {
      for await (const e of events) {
        seen.push(e.type);
        if (seen.length === 4) break;
      }
    })();
    for (const v of [1, 0, 1, 0] as const) {
      await out.setValue(0, v);
      await sleep(5);
    }
    await got;
    assert.deepEqual(seen, ['rising', 'falling', 'rising', 'falling']);
    assert.equal(lb.chips.get('a')!.lines.input(3), 0);
  });

  test('a wire with a delay: the input changes delayMs later, not before', async (t) => {
    const lb = await openLoopbackBoard({ ...two, wires: [{ from: 'a:0', to: 'b:0', delayMs: 40 }] });
    t.after(() => lb.close());
    const out = await lb.chips.get('a')!.chip.requestLines({ lines: { 0: { direction: 'output' } } });
    const b = lb.chips.get('b')!.lines;
    const t0 = performance.now();
    await out.setValue(0, 1);
    assert.equal(b.input(0), 0);
    while (b.input(0) === 0) await sleep(1);
    const took = performance.now() - t0;
    assert.ok(took >= 39 && took < 200, `input followed after ${took} ms`);
  });

  test('an output that stops driving (released) lets its wire go: the input reads its pull', async (t) => {
    const lb = await openLoopbackBoard({
      devices: [{ name: 'a', lines: 2, pull: { '1': 'up' } }],
      wires: [{ from: 'a:0', to: 'a:1' }],
    });
    t.after(() => lb.close());
    const lines = lb.chips.get('a')!.lines;
    assert.equal(lines.input(1), 1, 'undriven: the pull-up');
    const out = await lb.chips
      .get('a')!
      .chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 0 } } });
    assert.equal(lines.input(1), 0);
    await out.release();
    assert.equal(lines.input(1), 1);
  });

  test('an input a wire drives cannot be set by hand: a clear error', async (t) => {
    const lb = await openLoopbackBoard({ ...two, wires: [{ from: 'a:0', to: 'a:in' }] });
    t.after(() => lb.close());
    const lines = lb.chips.get('a')!.lines;
    assert.throws(
      () => lines.setInput(1, 1),
      (e: Error) => {
        assert.ok(e instanceof BoardDrivenError);
        assert.equal(
          e.message,
          'line 1 (in) of a is driven by wires[0] from a:0: it cannot also be set by hand',
        );
        return true;
      },
    );
    await assert.rejects(lines.pulse(1, 1), BoardDrivenError);
    lines.setInput(2, 1); // a line the board leaves alone
    assert.equal(lines.input(2), 1);
  });
});

describe('pulls', () => {
  test('an undriven input and a line with direction NONE read their pull; by hand still allowed', async (t) => {
    const lb = await openLoopbackBoard({
      devices: [{ name: 'a', lines: 3, names: ['p', 'q', 'r'], pull: { p: 'up', '2': 'down' } }],
    });
    t.after(() => lb.close());
    const { chip, lines, device } = lb.chips.get('a')!;
    assert.deepEqual(
      device.snapshot().map((l) => l.value),
      [1, 0, 0],
    );
    const req = await chip.requestLines({ lines: { 0: { direction: 'input' }, 2: { direction: 'input' } } });
    assert.deepEqual(await req.getValues(), [1, 0]);
    lines.setInput(0, 0);
    assert.equal(await req.getValue(0), 0);
  });
});

describe('shared open-drain nets', () => {
  test('any output driving 0 pulls the net low, else it reads the pull; inputs on it follow', async (t) => {
    const lb = await openLoopbackBoard({
      ...two,
      nets: [{ lines: ['a:0', 'b:0', 'b:1'] }],
    });
    t.after(() => lb.close());
    const a = await lb.chips
      .get('a')!
      .chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 1 } } });
    const b = await lb.chips.get('b')!.chip.requestLines({
      lines: { 0: { direction: 'output', outputValue: 1 }, 1: { direction: 'input' } },
    });
    assert.equal(await b.getValue(1), 1, 'both let go: the default pull-up');
    await a.setValue(0, 0);
    assert.equal(await b.getValue(1), 0, 'a pulls low');
    await b.setValue(0, 0);
    await a.setValue(0, 1);
    assert.equal(await b.getValue(1), 0, 'b still pulls low');
    await b.setValue(0, 1);
    assert.equal(await b.getValue(1), 1, 'both let go again');
    await a.release();
    // A line on the net that is no output senses the net.
    await b.setValue(0, 0);
    assert.equal(lb.chips.get('a')!.lines.sense(0), 0);
  });

  test('a pull-down net reads 0 when nobody drives it', async (t) => {
    const lb = await openLoopbackBoard({ ...two, nets: [{ lines: ['a:0', 'b:0'], pull: 'down' }] });
    t.after(() => lb.close());
    assert.equal(lb.chips.get('b')!.lines.input(0), 0);
  });
});

describe('checks', () => {
  test('bad references and two drivers on one line are refused, each at its JSON path', () => {
    assert.throws(
      () =>
        Board.create({
          devices: [
            { name: 'a', lines: 2, names: ['led'] },
            { name: 'a', lines: 1 },
          ],
          wires: [
            { from: 'a:led', to: ['a:1', 'c:0'] },
            { from: 'a:0', to: 'a:1' },
            { from: 'a:nope', to: 'a:7' },
          ],
          nets: [{ lines: ['a:0', 'a:0'] }],
          peripherals: [{ type: 'clock', line: 'a:1', periodMs: 1 }],
        }),
      (e: Error) => {
        assert.ok(e instanceof BoardError);
        assert.deepEqual(e.message.split('\n'), [
          'devices[1].name: expected a device name of its own: "a" is used twice',
          'nets[0].lines[1]: expected a line on one shared net only: a:0 is also on nets[0]',
          'wires[0].to[1]: no device "c" for "c:0" (devices: a, a)',
          'wires[1].to: a:1 is already driven by wires[0]: one driver per line, or put the lines on a shared net ("nets") for open-drain',
          'wires[2].from: no line named "nope" on a',
          'wires[2].to: no line 7 on a (it has 2 lines: 0..1)',
          'peripherals[0].line: a:1 is already driven by wires[0]: one driver per line, or put the lines on a shared net ("nets") for open-drain',
        ]);
        return true;
      },
    );
  });
});
