// A board's clock, encoder and button through the control socket: a ServedDevice whose simulated
// lines are a board's, spoken to by ControlClient and by raw newline-JSON over the real socket. The
// clock starts and stops (edges appear, then none), the encoder steps through every quadrature state
// to the position asked, status names the peripheral on each line, and wrong lines, wrong types and
// bad fields get the protocol's errors naming what is wrong.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Board } from '../../src/board/board.ts';
import { ControlClient, ControlError } from '../../src/control/control-client.ts';
import type { ControlEvent } from '../../src/control/control-protocol.ts';
import { controlPathFor } from '../../src/control/control-protocol.ts';
import { ServedDevice } from '../../src/daemon/served-device.ts';
import { RecordingLogger, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

describe('board peripherals on the control socket', () => {
  const tmp = tempDir();
  const socket = `${tmp.dir}/d.sock`;
  const log = new RecordingLogger();
  let board: Board;
  let served: ServedDevice;
  let c: ControlClient;

  before(async () => {
    board = Board.create({
      devices: [
        {
          name: 'd',
          lines: 6,
          names: ['clk', 'knob-a', 'knob-b', 'btn', 'led', 'free'],
          pull: { btn: 'up' },
        },
      ],
      peripherals: [
        { type: 'clock', name: 'tick', line: 'd:clk', periodMs: 10, duty: 0.25, running: false },
        { type: 'encoder', name: 'knob', a: 'd:knob-a', b: 'd:knob-b', stepMs: 2 },
        { type: 'button', name: 'user', line: 'd:btn' },
      ],
    });
    served = await ServedDevice.start({ socket, lines: 6, simulated: board.lines('d') }, log);
    await board.start();
    c = await ControlClient.connect(socket);
  });

  after(async () => {
    c?.close();
    await board?.close();
    await served?.close();
    tmp.cleanup();
  });

  test('status names the peripheral on each of its lines, with its state', async () => {
    const lines = (await c.status()).lines;
    assert.deepEqual(lines[0].peripheral, {
      name: 'tick',
      role: 'line',
      type: 'clock',
      running: false,
      periodMs: 10,
      duty: 0.25,
    });
    const knob = { name: 'knob', type: 'encoder', position: 0, target: 0, a: 0, b: 0 };
    assert.deepEqual(lines[1].peripheral, { ...knob, role: 'a' });
    assert.deepEqual(lines[2].peripheral, { ...knob, role: 'b' });
    assert.deepEqual(lines[3].peripheral, { name: 'user', role: 'line', type: 'button', pressed: false });
    assert.equal(lines[3].button, true);
    assert.equal(lines[0].button, undefined);
    assert.equal(lines[4].peripheral, undefined);
    assert.equal(lines[1].drivenBy, 'peripheral knob');
  });

  test('clock: read, start (edges on the line), stop (it drives 0 and no edge follows)', async () => {
    assert.equal((await c.clock('clk')).running, false);
    const edges: ControlEvent[] = [];
    const sub = await c.subscribe((e) => {
      if (e.event === 'input' && e.line === 0) edges.push(e);
    });
    const started = await c.clock('clk', 'start');
    assert.deepEqual(started, {
      name: 'tick',
      role: 'line',
      type: 'clock',
      running: true,
      periodMs: 10,
      duty: 0.25,
    });
    await waitFor(() => edges.length >= 6, 'six clock edges', 15_000);
    // A square wave: the edges alternate, starting with the rise at start.
    edges.slice(0, 6).forEach((e, i) => assert.equal(e.to, i % 2 === 0 ? 'high' : 'low', `edge ${i}`));
    assert.equal((await c.clock(0, 'start')).running, true, 'start while running: still running');
    const stopped = await c.clock('clk', 'stop');
    assert.equal(stopped.running, false);
    assert.equal(board.lines('d').input(0), 0, 'stopped, the clock drives 0');
    // Causality, not wall time: once stopped, no timer of the clock is left to make an edge.
    const n = edges.length;
    await sleep(60);
    assert.equal(edges.length, n, 'no edge after stop');
    assert.equal((await c.status()).lines[0].peripheral?.type, 'clock');
    sub.stop();
  });

  test('encoder: each move steps through the quadrature states to the position, from either line', async () => {
    const ab: string[] = [];
    const sub = await c.subscribe((e) => {
      if (e.event === 'input' && (e.line === 1 || e.line === 2))
        ab.push(`${e.line === 1 ? 'a' : 'b'}:${e.to}`);
    });
    const there = await c.encoder('knob-b', 3);
    assert.deepEqual(there, { name: 'knob', role: 'b', type: 'encoder', position: 3, target: 3, a: 0, b: 1 });
    // 0 → 1 → 2 → 3: (0,0) (1,0) (1,1) (0,1): one line changes per step.
    await waitFor(() => ab.length === 3, 'three A/B changes');
    assert.deepEqual(ab, ['a:high', 'b:high', 'a:low']);
    const back = await c.encoder('knob-a', -1);
    assert.deepEqual([back.role, back.position, back.a, back.b], ['a', -1, 0, 1]);
    await waitFor(() => ab.length === 7, 'four more A/B changes');
    // 3 → 2 → 1 → 0 → -1: (1,1) (1,0) (0,0) (0,1).
    assert.deepEqual(ab.slice(3), ['a:high', 'b:low', 'a:low', 'b:high']);
    assert.equal((await c.encoder(1)).position, -1, 'no position: only read');
    assert.deepEqual(
      [board.lines('d').input(1), board.lines('d').input(2)],
      [0, 1],
      'the lines hold the last state',
    );
    sub.stop();
  });

  test('a move cut short by a later one (another connection) replies too, where the encoder then is', async () => {
    const other = await ControlClient.connect(socket);
    try {
      const far = c.encoder('knob-a', 1_000_000);
      // Wait until the daemon has taken the far move, then send the one that supersedes it.
      for (;;) {
        const s = await other.encoder('knob-a');
        if (s.target === 1_000_000) break;
        await sleep(5);
      }
      const home = await other.encoder('knob-a', 0);
      assert.equal(home.position, 0);
      const cut = await far;
      assert.equal(cut.target, 0, 'the far move was superseded');
      assert.equal((await c.encoder('knob-a')).position, 0);
    } finally {
      other.close();
    }
  });

  test('button ops reply with its state', async () => {
    const r = await c.request({ op: 'press', line: 'btn' });
    assert.deepEqual(r, {
      ok: true,
      peripheral: { name: 'user', role: 'line', type: 'button', pressed: true },
    });
    assert.equal(board.lines('d').input(3), 0, 'pressed against its pull-up');
    await c.button('btn', 'release');
    assert.equal(board.lines('d').input(3), 1);
  });

  test('no such peripheral on the line, or another kind: the failed error says what the line has', async () => {
    const failure = async (p: Promise<unknown>): Promise<string> => {
      const e = await p.then(
        () => assert.fail('expected a refusal'),
        (x: unknown) => x,
      );
      assert.ok(e instanceof ControlError);
      assert.equal(e.code, 'failed');
      return e.message;
    };
    assert.equal(
      await failure(c.clock('led', 'start')),
      'clock: line 4 has no clock (a board file\'s "clock" peripheral)',
    );
    assert.equal(
      await failure(c.clock('knob-a')),
      'clock: line 1 has no clock (a board file\'s "clock" peripheral; it has the encoder "knob")',
    );
    assert.equal(
      await failure(c.encoder('clk', 2)),
      'encoder: line 0 has no encoder (a board file\'s "encoder" peripheral; it has the clock "tick")',
    );
    assert.equal(
      await failure(c.button('knob-b', 'press')),
      'press: line 2 has no button (a board file\'s "button" peripheral; it has the encoder "knob")',
    );
    await assert.rejects(c.encoder(99, 1), (e: unknown) => e instanceof ControlError && e.code === 'no-line');
    assert.equal(board.lines('d').input(0), 0, 'nothing changed');
  });

  test('bad fields over the raw socket: each error names its field; the connection goes on', async () => {
    const sock = createConnection(controlPathFor(socket));
    await new Promise((r) => sock.once('connect', r));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => (buf += s));
    const requests = [
      { op: 'clock', line: 0, action: 'go', id: 1 },
      { op: 'clock', line: 0, action: 1, id: 2 },
      { op: 'encoder', line: 1, position: 1.5, id: 3 },
      { op: 'encoder', line: 1, position: 2 ** 31, id: 4 },
      { op: 'encoder', line: 1, speed: 2, id: 5 },
      { op: 'clock', id: 6 },
      { op: 'encoder', line: 'knob-a', position: '3', id: 7 },
      { op: 'clock', line: 'clk', id: 8 },
    ];
    sock.write(requests.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await waitFor(() => buf.split('\n').length > requests.length, 'every reply');
    sock.destroy();
    const replies = buf
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(replies.slice(0, 7), [
      {
        ok: false,
        code: 'bad-field',
        error: '"action" must be "start" or "stop" (or left out), not "go"',
        id: 1,
      },
      {
        ok: false,
        code: 'bad-field',
        error: '"action" must be "start" or "stop" (or left out), not 1',
        id: 2,
      },
      {
        ok: false,
        code: 'bad-field',
        error: '"position" must be an integer in -2147483648..2147483647 (or left out), not 1.5',
        id: 3,
      },
      {
        ok: false,
        code: 'bad-field',
        error: '"position" must be an integer in -2147483648..2147483647 (or left out), not 2147483648',
        id: 4,
      },
      { ok: false, code: 'bad-field', error: 'unknown field "speed" for op "encoder"', id: 5 },
      {
        ok: false,
        code: 'bad-field',
        error: '"line" must be a line offset (integer ≥ 0) or a line name, not missing',
        id: 6,
      },
      {
        ok: false,
        code: 'bad-field',
        error: '"position" must be an integer in -2147483648..2147483647 (or left out), not "3"',
        id: 7,
      },
    ]);
    assert.equal(replies[7].ok, true);
    assert.equal(replies[7].id, 8);
    assert.ok(log.entries.some((e) => e.msg === 'control request refused'));
  });
});

describe('peripheral ops on a device with no board', () => {
  test('clock and encoder are refused with failed; the device goes on', async (t) => {
    const tmp = tempDir();
    const log = new RecordingLogger();
    const served = await ServedDevice.start({ socket: `${tmp.dir}/p.sock`, lines: 2 }, log);
    const c = await ControlClient.connect(`${tmp.dir}/p.sock`);
    t.after(async () => {
      c.close();
      await served.close();
      tmp.cleanup();
    });
    await assert.rejects(c.clock(0, 'start'), /clock: line 0 has no clock/);
    await assert.rejects(c.encoder(1, 4), /encoder: line 1 has no encoder/);
    assert.equal((await c.status()).lines[0].peripheral, undefined);
    await c.setInput(0, 1);
    assert.equal((await c.status()).lines[0].level, 'high');
  });
});
