// The built-in peripherals on a loopback board, seen by the TypeScript driver: what a guest's edge
// events and reads show (button bounce, clock, pattern, follower, encoder).
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Button } from '../../src/board/button.ts';
import type { Clock } from '../../src/board/clock.ts';
import type { Encoder } from '../../src/board/encoder.ts';
import { openLoopbackBoard, type LoopbackBoard } from '../../src/compose/loopback-board.ts';
import type { BoardSpec } from '../../src/board/board-schema.ts';

/** Every level the device senses on `line`, with board time (ms since the board started). */
function recordLevels(
  lb: LoopbackBoard,
  device: string,
  line: number,
): Array<{ level: number; atMs: number }> {
  const out: Array<{ level: number; atMs: number }> = [];
  const t0 = lb.board.scheduler.startNs;
  lb.chips.get(device)!.lines.onChange((c) => {
    if (c.line === line) out.push({ level: c.level, atMs: Number(c.timestampNs - t0) / 1e6 });
  });
  return out;
}

/**
 * Timers run at most 0.5 ms early (scheduler.earlyNs of the loopback board's Node timers), and on
 * this shared 2-core machine one may run late when the event loop stalls: each time must be at or after its deadline,
 * within `lateMs`, and the median lateness small.
 */
function assertOnTime(times: readonly number[], deadlines: readonly number[], lateMs = 100): void {
  const late = times.map((t, i) => t - deadlines[i]);
  const show = () => times.map((t, i) => `${t.toFixed(2)}/${deadlines[i].toFixed(2)}`).join(', ');
  for (const l of late) assert.ok(l >= -0.55 && l < lateMs, `times/deadlines (ms): ${show()}`);
  const median = [...late].sort((a, b) => a - b)[Math.floor(late.length / 2)];
  assert.ok(median < 5, `median lateness ${median} ms: ${show()}`);
}

/**
 * Where a periodic series' grid starts: the earliest phase of its edges against the first one (the
 * peripheral started with the board, before the recording; its least-late edge is nearest its grid).
 */
function gridOrigin(times: readonly number[], periodMs: number): number {
  const phase = (t: number) => ((((t - times[0]) % periodMs) + periodMs * 1.5) % periodMs) - periodMs / 2;
  return times[0] + Math.min(...times.map(phase));
}

/**
 * A periodic series by absolute deadline (origin + k·period): each time's deadline is the latest grid
 * point at or before it (a run later than a whole period skips the deadlines it missed, so k is not
 * always consecutive); no drift means the lateness against the grid stays small however long it runs.
 */
function assertOnGrid(times: readonly number[], origin: number, periodMs: number): void {
  assertOnTime(
    times,
    times.map((t) => origin + Math.floor((t - origin + 0.55) / periodMs) * periodMs),
  );
}

/**
 * Timing asserts on a shared machine: a load spike can make one run late, a real fault (drift, a lost
 * or early edge) fails every try. Runs `body` on a fresh board up to `tries` times; the last failure
 * is reported, and every failed try is logged as a diagnostic.
 */
async function timed(
  t: TestContext,
  body: (t: { after(fn: () => Promise<void>): void }) => Promise<void>,
  tries = 3,
): Promise<void> {
  let last: unknown;
  for (let i = 1; i <= tries; i++) {
    const closers: Array<() => Promise<void>> = [];
    try {
      await body({ after: (fn) => closers.push(fn) });
      return;
    } catch (e) {
      if (!(e instanceof assert.AssertionError)) throw e;
      last = e;
      t.diagnostic(`try ${i} of ${tries}: ${e.message.split('\n')[0]}`);
    } finally {
      for (const c of closers.reverse()) await c();
    }
  }
  throw last;
}

async function board(t: { after(fn: () => Promise<void>): void }, spec: BoardSpec): Promise<LoopbackBoard> {
  const lb = await openLoopbackBoard(spec);
  t.after(() => lb.close());
  return lb;
}

describe('button', () => {
  test('pulled up: pressed reads 0, released lets go to the pull; by hand refused', async (t) => {
    const lb = await board(t, {
      devices: [{ name: 'd', lines: 1, names: ['btn'], pull: { btn: 'up' } }],
      peripherals: [{ type: 'button', name: 'b', line: 'd:btn' }],
    });
    const req = await lb.chips.get('d')!.chip.requestLines({ lines: { 0: { direction: 'input' } } });
    const b = lb.board.peripheral('b') as Button;
    assert.equal(await req.getValue(0), 1);
    b.press();
    assert.equal(await req.getValue(0), 0);
    b.release();
    assert.equal(await req.getValue(0), 1);
    assert.throws(() => lb.chips.get('d')!.lines.setInput(0, 0), /driven by peripheral b/);
  });

  test('bounce: N changes evenly within T, ending pressed; edges reach the driver in order', (t) =>
    timed(t, async (t) => {
      const lb = await board(t, {
        devices: [{ name: 'd', lines: 1 }],
        peripherals: [{ type: 'button', name: 'b', line: 'd:0', bounce: { transitions: 5, withinMs: 40 } }],
      });
      const levels = recordLevels(lb, 'd', 0);
      const b = lb.board.peripheral('b') as Button;
      b.press();
      await sleep(80);
      assert.deepEqual(
        levels.map((l) => l.level),
        [1, 0, 1, 0, 1],
      );
      // Change k at k·T/(N-1) after the press.
      const t0 = levels[0].atMs;
      assertOnTime(
        levels.map((l) => l.atMs),
        levels.map((_, k) => t0 + k * 10),
      );
      levels.length = 0;
      b.release();
      await sleep(80);
      assert.deepEqual(
        levels.map((l) => l.level),
        [0, 1, 0, 1, 0],
      );
    }));

  test('click: press, hold, release (10 changes with a bounce of 5), resolved once settled', (t) =>
    timed(t, async (t) => {
      const lb = await board(t, {
        devices: [{ name: 'd', lines: 1 }],
        peripherals: [{ type: 'button', name: 'b', line: 'd:0', bounce: { transitions: 5, withinMs: 10 } }],
      });
      const levels = recordLevels(lb, 'd', 0);
      await (lb.board.peripheral('b') as Button).click(15);
      assert.deepEqual(
        levels.map((l) => l.level),
        [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
      );
      assert.ok(levels[5].atMs - levels[0].atMs >= 24.8, 'released 10 ms of bounce + 15 ms after the press');
    }));
});

describe('clock', () => {
  test('period and duty by absolute deadline: the n-th edge is near start + n·period', (t) =>
    timed(t, async (t) => {
      const lb = await board(t, {
        devices: [{ name: 'd', lines: 1 }],
        peripherals: [{ type: 'clock', name: 'c', line: 'd:0', periodMs: 10, duty: 0.3 }],
      });
      const levels = recordLevels(lb, 'd', 0);
      await sleep(205);
      const c = lb.board.peripheral('c') as Clock;
      c.halt();
      const rises = levels.filter((l) => l.level === 1).map((l) => l.atMs);
      const falls = levels.filter((l) => l.level === 0).map((l) => l.atMs);
      // Rise k at origin + k·10 ms, fall 3 ms later: absolute deadlines, so no drift.
      assert.ok(rises.length >= 8, `${rises.length} rising edges in 205 ms`);
      const origin = gridOrigin(rises, 10);
      assertOnGrid(rises, origin, 10);
      assertOnGrid(falls, origin + 3, 10);
      assert.equal(lb.chips.get('d')!.lines.input(0), 0, 'stopped: 0');
      levels.length = 0;
      await sleep(30);
      assert.deepEqual(levels, [], 'stopped: no more edges');
      c.run();
      await sleep(25);
      assert.ok(levels.length >= 3, 'started again');
    }));

  test('running: false waits for run()', async (t) => {
    const lb = await board(t, {
      devices: [{ name: 'd', lines: 1 }],
      peripherals: [{ type: 'clock', name: 'c', line: 'd:0', periodMs: 5, running: false }],
    });
    const levels = recordLevels(lb, 'd', 0);
    await sleep(20);
    assert.deepEqual(levels, []);
    assert.equal((lb.board.peripheral('c') as Clock).running, false);
  });
});

describe('pattern', () => {
  test('levels with durations, once: the last level stays', async (t) => {
    const levels: number[] = [];
    const lb = await openLoopbackBoard({
      devices: [{ name: 'd', lines: 1 }],
      peripherals: [
        {
          type: 'pattern',
          line: 'd:0',
          steps: [
            { level: 1, ms: 10 },
            { level: 0, ms: 5 },
            { level: 1, ms: 5 },
          ],
        },
      ],
    });
    t.after(() => lb.close());
    // The first step applies at start, before this listener: read it.
    levels.push(lb.chips.get('d')!.lines.input(0));
    lb.chips.get('d')!.lines.onChange((c) => levels.push(c.level));
    await sleep(60);
    assert.deepEqual(levels, [1, 0, 1]);
  });

  test('loop: the sequence repeats on absolute time', (t) =>
    timed(t, async (t) => {
      const lb = await board(t, {
        devices: [{ name: 'd', lines: 1 }],
        peripherals: [
          {
            type: 'pattern',
            line: 'd:0',
            steps: [
              { level: 1, ms: 4 },
              { level: 0, ms: 6 },
            ],
            loop: true,
          },
        ],
      });
      const levels = recordLevels(lb, 'd', 0);
      await sleep(103);
      const rises = levels.filter((l) => l.level === 1).map((l) => l.atMs);
      const falls = levels.filter((l) => l.level === 0).map((l) => l.atMs);
      assert.ok(rises.length >= 5, `${rises.length} cycles of 10 ms in 103 ms`);
      // Each step at its absolute time from the start: high at origin + k·10, low 4 ms later.
      const origin = gridOrigin(rises, 10);
      assertOnGrid(rises, origin, 10);
      assertOnGrid(falls, origin + 4, 10);
    }));
});

describe('follower', () => {
  test('an input follows a guest output, inverted, after a delay', async (t) => {
    const lb = await board(t, {
      devices: [{ name: 'd', lines: 2 }],
      peripherals: [{ type: 'follower', from: 'd:0', to: 'd:1', delayMs: 20, invert: true }],
    });
    const lines = lb.chips.get('d')!.lines;
    assert.equal(lines.input(1), 1, 'inverted 0 at start');
    const req = await lb.chips
      .get('d')!
      .chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 1 } } });
    assert.equal(lines.input(1), 1, 'not yet');
    await sleep(40);
    assert.equal(lines.input(1), 0);
    await req.setValue(0, 0);
    await sleep(40);
    assert.equal(lines.input(1), 1);
  });
});

describe('encoder', () => {
  test('quadrature: one line changes per step, A leads B going up, B leads A going down', async (t) => {
    const lb = await board(t, {
      devices: [{ name: 'd', lines: 2, names: ['A', 'B'] }],
      peripherals: [{ type: 'encoder', name: 'knob', a: 'd:A', b: 'd:B', stepMs: 2 }],
    });
    const lines = lb.chips.get('d')!.lines;
    const states: string[] = [];
    lines.onChange(() => states.push(`${lines.input(0)}${lines.input(1)}`));
    const knob = lb.board.peripheral('knob') as Encoder;
    await knob.moveTo(4);
    assert.deepEqual(states, ['10', '11', '01', '00']);
    states.length = 0;
    await knob.moveTo(2);
    assert.deepEqual(states, ['01', '11']);
    assert.equal(knob.position, 2);
  });
});
