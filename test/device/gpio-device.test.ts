// GpioDevice (the virtio 1.2 §5.18 device model) on its own: decoded requests in, replies out, eventq
// buffers as plain-number tokens handed back through a recording sink. Test names cite
// docs/protocol.md: "§2:" for a row of the per-line IRQ table, "DN" for a device rule.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { Direction, IrqStatus, IrqType, MessageType, Status } from '../../src/protocol/constants.ts';

const { GET_LINE_NAMES, GET_DIRECTION, SET_DIRECTION, GET_VALUE, SET_VALUE, SET_IRQ_TYPE } = MessageType;
const { OK, ERR } = Status;
const { VALID, INVALID } = IrqStatus;

type HandBack = [token: number, status: number, line: number];

function setup(ngpio = 4, names: readonly string[] = [], irq = true) {
  const lines = new SimulatedLines(ngpio, names);
  const dev = new GpioDevice<number>(lines);
  const handed: HandBack[] = [];
  dev.setEventSink((token, status, line) => handed.push([token, status, line]));
  dev.setIrqSupported(irq);
  const handle = (type: number, gpio: number, value = 0) => dev.handle({ type, gpio, value });
  /** Input line with an interrupt type enabled. */
  const enable = (gpio: number, type: number) => {
    assert.deepEqual(handle(SET_DIRECTION, gpio, Direction.IN), { status: OK, value: 0 });
    assert.deepEqual(handle(SET_IRQ_TYPE, gpio, type), { status: OK, value: 0 });
  };
  const snap = (gpio: number) => dev.snapshot()[gpio];
  return { lines, dev, handed, handle, enable, snap };
}

describe('§1 the six messages', () => {
  test('GET_LINE_NAMES returns the names block (unnamed lines as a lone NUL)', () => {
    const { handle } = setup(4, ['a', '', 'bc']);
    const r = handle(GET_LINE_NAMES, 0);
    assert.equal(r.status, OK);
    assert.equal(r.value, 0);
    assert.deepEqual([...(r.names ?? [])], [0x61, 0, 0, 0x62, 0x63, 0, 0]);
  });

  test('GET_LINE_NAMES without names: ERR (D11: names size 0)', () => {
    const { dev, handle } = setup(4);
    assert.equal(dev.namesBlock.length, 0);
    assert.deepEqual(handle(GET_LINE_NAMES, 0), { status: ERR, value: 0 });
  });

  test('GET_DIRECTION: NONE at start, then what SET_DIRECTION set', () => {
    const { handle } = setup();
    assert.deepEqual(handle(GET_DIRECTION, 2), { status: OK, value: Direction.NONE });
    assert.deepEqual(handle(SET_DIRECTION, 2, Direction.IN), { status: OK, value: 0 });
    assert.deepEqual(handle(GET_DIRECTION, 2), { status: OK, value: Direction.IN });
    assert.deepEqual(handle(SET_DIRECTION, 2, Direction.OUT), { status: OK, value: 0 });
    assert.deepEqual(handle(GET_DIRECTION, 2), { status: OK, value: Direction.OUT });
  });

  test('SET_DIRECTION reaches the backend', () => {
    const { lines, handle } = setup();
    handle(SET_DIRECTION, 1, Direction.IN);
    assert.equal(lines.direction(1), Direction.IN);
    handle(SET_DIRECTION, 1, Direction.OUT);
    assert.equal(lines.direction(1), Direction.OUT);
    handle(SET_DIRECTION, 1, Direction.NONE);
    assert.equal(lines.direction(1), Direction.NONE);
  });

  test('GET_VALUE on an input returns the sensed level', () => {
    const { lines, handle } = setup();
    handle(SET_DIRECTION, 3, Direction.IN);
    assert.deepEqual(handle(GET_VALUE, 3), { status: OK, value: 0 });
    lines.setInput(3, 1);
    assert.deepEqual(handle(GET_VALUE, 3), { status: OK, value: 1 });
  });

  test('SET_VALUE on an output drives the line', () => {
    const { lines, handle } = setup();
    handle(SET_DIRECTION, 0, Direction.OUT);
    assert.deepEqual(handle(SET_VALUE, 0, 1), { status: OK, value: 0 });
    assert.equal(lines.output(0), 1);
    assert.deepEqual(handle(SET_VALUE, 0, 0), { status: OK, value: 0 });
    assert.equal(lines.output(0), 0);
  });

  test('SET_IRQ_TYPE on an input: OK, type in force', () => {
    const { handle, snap } = setup();
    handle(SET_DIRECTION, 1, Direction.IN);
    assert.deepEqual(handle(SET_IRQ_TYPE, 1, IrqType.EDGE_FALLING), { status: OK, value: 0 });
    assert.equal(snap(1).irqType, IrqType.EDGE_FALLING);
  });

  test('unknown message types: ERR', () => {
    const { handle } = setup();
    for (const type of [0x0000, 0x0007, 0x00ff, 0xffff])
      assert.deepEqual(handle(type, 0), { status: ERR, value: 0 }, `type 0x${type.toString(16)}`);
  });
});

describe('D4 validation', () => {
  test('gpio >= ngpio: ERR for every per-line message, nothing changes', () => {
    const { lines, handle, handed } = setup(4);
    for (const gpio of [4, 5, 0xffff]) {
      for (const [type, value] of [
        [GET_DIRECTION, 0],
        [SET_DIRECTION, Direction.IN],
        [GET_VALUE, 0],
        [SET_VALUE, 1],
        [SET_IRQ_TYPE, IrqType.EDGE_BOTH],
        [SET_IRQ_TYPE, IrqType.NONE],
      ] as const)
        assert.deepEqual(handle(type, gpio, value), { status: ERR, value: 0 }, `type ${type} gpio ${gpio}`);
    }
    assert.equal(lines.direction(3), Direction.NONE);
    assert.deepEqual(handed, []);
  });

  test('bad direction codes: ERR, direction unchanged', () => {
    const { handle } = setup();
    handle(SET_DIRECTION, 0, Direction.IN);
    for (const v of [3, 4, 0x100, 0xffffffff])
      assert.deepEqual(handle(SET_DIRECTION, 0, v), { status: ERR, value: 0 }, `direction ${v}`);
    assert.deepEqual(handle(GET_DIRECTION, 0), { status: OK, value: Direction.IN });
  });

  test('bad values: ERR, value unchanged', () => {
    const { lines, handle } = setup();
    handle(SET_DIRECTION, 0, Direction.OUT);
    handle(SET_VALUE, 0, 1);
    for (const v of [2, 0xff, 0x101, 0xffffffff])
      assert.deepEqual(handle(SET_VALUE, 0, v), { status: ERR, value: 0 }, `value ${v}`);
    assert.equal(lines.output(0), 1);
  });

  test('bad IRQ type codes: ERR, type unchanged', () => {
    const { handle, snap } = setup();
    handle(SET_DIRECTION, 0, Direction.IN);
    for (const v of [5, 6, 7, 9, 0x0c, 0x10, 0x100, 0xffffffff])
      assert.deepEqual(handle(SET_IRQ_TYPE, 0, v), { status: ERR, value: 0 }, `irq type ${v}`);
    assert.equal(snap(0).irqType, IrqType.NONE);
  });

  test('D11 names must be unique', () => {
    assert.throws(() => new GpioDevice(new SimulatedLines(3, ['x', 'y', 'x'])), /not unique/);
  });

  test('D1 config: le16 ngpio, 2 zero bytes, le32 names size', () => {
    const { dev } = setup(0x0102, ['ab', 'c']);
    // names block: "ab\0c\0" then one NUL for each of the other 256 lines = 261 = 0x105 bytes
    assert.equal(dev.namesBlock.length, 0x105);
    assert.deepEqual([...dev.config()], [0x02, 0x01, 0, 0, 0x05, 0x01, 0, 0]);
  });
});

describe('D7–D10 directions and values', () => {
  test('D7 SET_VALUE before OUT is stored, not driven; D8 OUT drives it', () => {
    const { lines, handle } = setup();
    assert.deepEqual(handle(SET_VALUE, 2, 1), { status: OK, value: 0 });
    assert.equal(lines.output(2), null);
    assert.equal(lines.direction(2), Direction.NONE);
    handle(SET_DIRECTION, 2, Direction.OUT);
    assert.equal(lines.output(2), 1);
    assert.deepEqual(handle(GET_VALUE, 2), { status: OK, value: 1 });
  });

  test('D7 SET_VALUE on an input is stored and used when it becomes OUT', () => {
    const { lines, handle } = setup();
    handle(SET_DIRECTION, 2, Direction.IN);
    handle(SET_VALUE, 2, 1);
    assert.deepEqual(handle(GET_VALUE, 2), { status: OK, value: 0 }, 'an input senses, it does not drive');
    handle(SET_DIRECTION, 2, Direction.OUT);
    assert.equal(lines.output(2), 1);
  });

  test('D8 OUT without SET_VALUE drives 0', () => {
    const { lines, handle } = setup();
    lines.setInput(1, 1);
    handle(SET_DIRECTION, 1, Direction.OUT);
    assert.equal(lines.output(1), 0);
    assert.deepEqual(handle(GET_VALUE, 1), { status: OK, value: 0 });
  });

  test('D10 GET_VALUE on an output returns the driven level, not the outside one', () => {
    const { lines, handle } = setup();
    lines.setInput(0, 0);
    handle(SET_VALUE, 0, 1);
    handle(SET_DIRECTION, 0, Direction.OUT);
    assert.deepEqual(handle(GET_VALUE, 0), { status: OK, value: 1 });
    lines.setInput(1, 1);
    handle(SET_DIRECTION, 1, Direction.OUT);
    assert.deepEqual(handle(GET_VALUE, 1), { status: OK, value: 0 });
  });

  test('D10 GET_VALUE on a line with direction NONE returns the level (our choice)', () => {
    const { lines, handle } = setup();
    lines.setInput(0, 1);
    assert.deepEqual(handle(GET_VALUE, 0), { status: OK, value: 1 });
  });
});

describe('§2 SET_IRQ_TYPE', () => {
  test('§2: t≠NONE on an output: ERR, type stays NONE (D12)', () => {
    const { handle, snap } = setup();
    handle(SET_DIRECTION, 0, Direction.OUT);
    for (const t of [IrqType.EDGE_RISING, IrqType.EDGE_BOTH, IrqType.LEVEL_HIGH])
      assert.deepEqual(handle(SET_IRQ_TYPE, 0, t), { status: ERR, value: 0 });
    assert.equal(snap(0).irqType, IrqType.NONE);
  });

  test('D12 without F_IRQ every SET_IRQ_TYPE is ERR, NONE included', () => {
    const { handle, snap } = setup(4, [], false);
    handle(SET_DIRECTION, 0, Direction.IN);
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.EDGE_RISING), { status: ERR, value: 0 });
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.NONE), { status: ERR, value: 0 });
    assert.equal(snap(0).irqType, IrqType.NONE);
  });

  test('§2: same type again: OK and a no-op (latch and held buffer stay)', () => {
    const { lines, handle, enable, snap, dev, handed } = setup();
    enable(0, IrqType.EDGE_RISING);
    lines.setInput(0, 1); // masked: latched
    assert.equal(snap(0).latched, true);
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.EDGE_RISING), { status: OK, value: 0 });
    assert.equal(snap(0).latched, true);
    dev.queueEventBuffer(0, 7);
    assert.deepEqual(handed, [[7, VALID, 0]]);
    dev.queueEventBuffer(0, 8);
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.EDGE_RISING), { status: OK, value: 0 });
    assert.equal(snap(0).armed, true);
    assert.deepEqual(handed, [[7, VALID, 0]]);
  });

  test('§2: one type to another without NONE first: ERR, old type kept', () => {
    const { handle, enable, snap } = setup();
    enable(1, IrqType.EDGE_RISING);
    assert.deepEqual(handle(SET_IRQ_TYPE, 1, IrqType.EDGE_FALLING), { status: ERR, value: 0 });
    assert.deepEqual(handle(SET_IRQ_TYPE, 1, IrqType.LEVEL_HIGH), { status: ERR, value: 0 });
    assert.equal(snap(1).irqType, IrqType.EDGE_RISING);
    assert.deepEqual(handle(SET_IRQ_TYPE, 1, IrqType.NONE), { status: OK, value: 0 });
    assert.deepEqual(handle(SET_IRQ_TYPE, 1, IrqType.EDGE_FALLING), { status: OK, value: 0 });
    assert.equal(snap(1).irqType, IrqType.EDGE_FALLING);
  });

  test('§2: NONE with a held buffer hands it back INVALID before handle() returns (D14)', () => {
    const { lines, dev, enable, snap } = setup();
    enable(2, IrqType.EDGE_BOTH);
    dev.queueEventBuffer(2, 42);
    const order: string[] = [];
    dev.setEventSink((token, status, line) => order.push(`sink ${token} ${status} ${line}`));
    const r = dev.handle({ type: SET_IRQ_TYPE, gpio: 2, value: IrqType.NONE });
    order.push(`reply ${r.status}`);
    assert.deepEqual(order, [`sink 42 ${INVALID} 2`, `reply ${OK}`]);
    assert.equal(snap(2).armed, false);
    assert.equal(snap(2).irqType, IrqType.NONE);
    lines.setInput(2, 1);
    assert.equal(snap(2).latched, false, 'disabled: edges are not latched');
    assert.equal(order.length, 2);
  });

  test('§2: NONE drops the latch (D14); a later enable does not see the old edge', () => {
    const { lines, dev, handle, enable, snap, handed } = setup();
    enable(0, IrqType.EDGE_RISING);
    lines.setInput(0, 1);
    assert.equal(snap(0).latched, true);
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.NONE), { status: OK, value: 0 });
    assert.equal(snap(0).latched, false);
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.EDGE_RISING), { status: OK, value: 0 });
    dev.queueEventBuffer(0, 1);
    assert.deepEqual(handed, []);
    assert.equal(snap(0).armed, true);
  });

  test('§2: NONE without a held buffer: OK, nothing handed back', () => {
    const { handle, enable, handed, snap } = setup();
    enable(0, IrqType.LEVEL_LOW);
    assert.deepEqual(handle(SET_IRQ_TYPE, 0, IrqType.NONE), { status: OK, value: 0 });
    assert.deepEqual(handed, []);
    assert.equal(snap(0).irqType, IrqType.NONE);
  });

  test('§2 note: enabling on a line with direction NONE makes it an input (our choice)', () => {
    const { lines, handle } = setup();
    assert.deepEqual(handle(SET_IRQ_TYPE, 3, IrqType.EDGE_RISING), { status: OK, value: 0 });
    assert.deepEqual(handle(GET_DIRECTION, 3), { status: OK, value: Direction.IN });
    assert.equal(lines.direction(3), Direction.IN);
  });

  test('SET_DIRECTION OUT while an interrupt is enabled: ERR (line stays an input)', () => {
    const { handle, enable } = setup();
    enable(0, IrqType.EDGE_RISING);
    assert.deepEqual(handle(SET_DIRECTION, 0, Direction.OUT), { status: ERR, value: 0 });
    assert.deepEqual(handle(GET_DIRECTION, 0), { status: OK, value: Direction.IN });
  });
});

describe('§2 eventq buffer arrival', () => {
  test('§2: bad gpio: INVALID at once', () => {
    const { dev, handed } = setup(4);
    dev.queueEventBuffer(4, 1);
    dev.queueEventBuffer(0xffff, 2);
    dev.queueEventBuffer(null, 3); // malformed buffer (bad sizes)
    assert.deepEqual(handed, [
      [1, INVALID, 4],
      [2, INVALID, 0xffff],
      [3, INVALID, 0xffff],
    ]);
  });

  test('§2: type NONE: INVALID at once, line not armed', () => {
    const { dev, handle, handed, snap } = setup();
    handle(SET_DIRECTION, 0, Direction.IN);
    dev.queueEventBuffer(0, 9);
    assert.deepEqual(handed, [[9, INVALID, 0]]);
    assert.equal(snap(0).armed, false);
    assert.equal(snap(0).counters.invalid, 1);
  });

  test('§2: second buffer for an armed line: INVALID, the first is still held', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(1, IrqType.EDGE_RISING);
    dev.queueEventBuffer(1, 100);
    dev.queueEventBuffer(1, 101);
    assert.deepEqual(handed, [[101, INVALID, 1]]);
    assert.equal(snap(1).armed, true);
    lines.setInput(1, 1);
    assert.deepEqual(handed, [
      [101, INVALID, 1],
      [100, VALID, 1],
    ]);
  });

  test('§2: edge type with a latched edge: VALID at once, latch cleared', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.EDGE_FALLING);
    lines.setInput(0, 1);
    assert.equal(snap(0).latched, false, 'a rising edge does not match EDGE_FALLING');
    lines.setInput(0, 0);
    assert.equal(snap(0).latched, true);
    dev.queueEventBuffer(0, 5);
    assert.deepEqual(handed, [[5, VALID, 0]]);
    assert.equal(snap(0).latched, false);
    assert.equal(snap(0).armed, false);
  });

  test('§2: level type with the level active now: VALID at once', () => {
    const { lines, dev, enable, handed } = setup();
    lines.setInput(0, 1);
    enable(0, IrqType.LEVEL_HIGH);
    dev.queueEventBuffer(0, 1);
    enable(1, IrqType.LEVEL_LOW); // line 1 is at 0
    dev.queueEventBuffer(1, 2);
    assert.deepEqual(handed, [
      [1, VALID, 0],
      [2, VALID, 1],
    ]);
  });

  test('§2: otherwise the buffer is kept: the line is armed', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.LEVEL_HIGH); // level 0: inactive
    lines.setInput(1, 1);
    enable(1, IrqType.LEVEL_LOW); // level 1: inactive
    enable(2, IrqType.EDGE_BOTH); // nothing latched
    for (const l of [0, 1, 2]) dev.queueEventBuffer(l, l);
    assert.deepEqual(handed, []);
    assert.deepEqual(
      dev.snapshot().map((s) => s.armed),
      [true, true, true, false],
    );
    assert.equal(snap(3).irqType, IrqType.NONE);
  });
});

describe('§2 input edges and levels (D13, D15)', () => {
  test('§2: matching edge while armed: VALID (the line is masked again)', () => {
    const { lines, dev, enable, handed, snap } = setup();
    lines.setInput(1, 1);
    lines.setInput(2, 1);
    enable(0, IrqType.EDGE_RISING);
    enable(1, IrqType.EDGE_FALLING);
    enable(2, IrqType.EDGE_BOTH);
    for (const l of [0, 1, 2]) dev.queueEventBuffer(l, 10 + l);
    lines.setInput(0, 1); // rising: matches
    lines.setInput(1, 0); // falling: matches
    lines.setInput(2, 0); // falling: matches both
    assert.deepEqual(handed, [
      [10, VALID, 0],
      [11, VALID, 1],
      [12, VALID, 2],
    ]);
    for (const l of [0, 1, 2]) assert.equal(snap(l).armed, false);
  });

  test('non-matching edges neither fire nor latch', () => {
    const { lines, dev, enable, handed, snap } = setup();
    lines.setInput(0, 1);
    enable(0, IrqType.EDGE_RISING);
    enable(1, IrqType.EDGE_FALLING);
    dev.queueEventBuffer(0, 1);
    lines.setInput(0, 0); // falling on a rising line
    lines.setInput(1, 1); // rising on a falling line (masked)
    assert.deepEqual(handed, []);
    assert.equal(snap(1).latched, false);
    assert.equal(snap(0).counters.edges, 0);
  });

  test('§2: edges while masked latch once; more edges coalesce (counters)', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.EDGE_RISING);
    for (let i = 0; i < 3; i++) {
      lines.setInput(0, 1);
      lines.setInput(0, 0);
    }
    assert.equal(snap(0).latched, true);
    assert.deepEqual(snap(0).counters, { edges: 3, delivered: 0, latched: 1, coalesced: 2, invalid: 0 });
    dev.queueEventBuffer(0, 1);
    dev.queueEventBuffer(0, 2);
    assert.deepEqual(handed, [[1, VALID, 0]], 'one interrupt for three edges; the next buffer is held');
    assert.deepEqual(snap(0).counters, { edges: 3, delivered: 1, latched: 1, coalesced: 2, invalid: 0 });
    assert.equal(snap(0).armed, true);
  });

  test('edges while disabled are not latched', () => {
    const { lines, dev, handle, enable, handed } = setup();
    handle(SET_DIRECTION, 0, Direction.IN);
    lines.setInput(0, 1);
    lines.setInput(0, 0);
    enable(0, IrqType.EDGE_BOTH);
    dev.queueEventBuffer(0, 1);
    assert.deepEqual(handed, []);
  });

  test('§2: level becomes active while armed: VALID; becoming inactive does nothing', () => {
    const { lines, dev, enable, handed } = setup();
    enable(0, IrqType.LEVEL_HIGH);
    lines.setInput(1, 1);
    enable(1, IrqType.LEVEL_LOW);
    dev.queueEventBuffer(0, 1);
    dev.queueEventBuffer(1, 2);
    lines.setInput(1, 0);
    lines.setInput(0, 1);
    assert.deepEqual(handed, [
      [2, VALID, 1],
      [1, VALID, 0],
    ]);
    dev.queueEventBuffer(0, 3); // still high: fires again at once
    lines.setInput(1, 1);
    dev.queueEventBuffer(1, 4); // now inactive: held
    lines.setInput(1, 1);
    assert.deepEqual(handed.slice(2), [[3, VALID, 0]]);
  });

  test('§2: level active while masked is never latched; re-checked when a buffer arrives', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.LEVEL_HIGH);
    lines.setInput(0, 1);
    lines.setInput(0, 0);
    assert.equal(snap(0).latched, false);
    dev.queueEventBuffer(0, 1);
    assert.deepEqual(handed, [], 'the pulse is gone: nothing to report');
    assert.equal(snap(0).armed, true);
    lines.setInput(0, 1);
    assert.deepEqual(handed, [[1, VALID, 0]]);
    dev.queueEventBuffer(0, 2);
    assert.deepEqual(handed, [
      [1, VALID, 0],
      [2, VALID, 0],
    ]);
  });

  test('D15 no buffer, no VALID: edges with nothing armed never reach the sink', () => {
    const { lines, enable, handed, snap } = setup();
    enable(0, IrqType.EDGE_BOTH);
    enable(1, IrqType.LEVEL_HIGH);
    for (let i = 0; i < 4; i++) {
      lines.setInput(0, (i % 2 ? 0 : 1) as 0 | 1);
      lines.setInput(1, (i % 2 ? 0 : 1) as 0 | 1);
    }
    assert.deepEqual(handed, []);
    assert.equal(snap(0).counters.delivered, 0);
  });
});

describe('§2 SET_DIRECTION NONE (D9)', () => {
  test('resets value, direction, type and latch; the held buffer comes back INVALID first', () => {
    const { lines, dev, enable, snap } = setup();
    const order: string[] = [];
    dev.setEventSink((token, status, line) => order.push(`sink ${token} ${status} ${line}`));
    dev.handle({ type: SET_VALUE, gpio: 0, value: 1 });
    enable(0, IrqType.EDGE_RISING);
    dev.queueEventBuffer(0, 3);
    const r = dev.handle({ type: SET_DIRECTION, gpio: 0, value: Direction.NONE });
    order.push(`reply ${r.status} ${r.value}`);
    assert.deepEqual(order, [`sink 3 ${INVALID} 0`, `reply ${OK} 0`]);
    const s = snap(0);
    assert.equal(s.direction, Direction.NONE);
    assert.equal(s.irqType, IrqType.NONE);
    assert.equal(s.armed, false);
    assert.equal(s.latched, false);
    assert.equal(lines.direction(0), Direction.NONE);
    dev.handle({ type: SET_DIRECTION, gpio: 0, value: Direction.OUT });
    assert.equal(lines.output(0), 0, 'the stored value was discarded');
  });

  test('drops a pending latch', () => {
    const { lines, dev, handle, enable, handed, snap } = setup();
    enable(1, IrqType.EDGE_BOTH);
    lines.setInput(1, 1);
    assert.equal(snap(1).latched, true);
    handle(SET_DIRECTION, 1, Direction.NONE);
    assert.equal(snap(1).latched, false);
    enable(1, IrqType.EDGE_BOTH);
    dev.queueEventBuffer(1, 1);
    assert.deepEqual(handed, []);
  });
});

describe('D16 suspendEvents / resumeEvents', () => {
  test('edges while suspended are latched even when armed, and delivered on resume', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.EDGE_RISING);
    dev.queueEventBuffer(0, 1);
    dev.suspendEvents();
    lines.setInput(0, 1);
    lines.setInput(0, 0);
    lines.setInput(0, 1);
    assert.deepEqual(handed, []);
    assert.equal(snap(0).armed, true);
    assert.equal(snap(0).latched, true);
    dev.resumeEvents();
    assert.deepEqual(handed, [[1, VALID, 0]]);
    assert.equal(snap(0).latched, false);
  });

  test('a buffer arriving while suspended is held, even with a latch', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.EDGE_BOTH);
    lines.setInput(0, 1);
    dev.suspendEvents();
    dev.queueEventBuffer(0, 1);
    assert.deepEqual(handed, []);
    assert.equal(snap(0).armed, true);
    dev.resumeEvents();
    assert.deepEqual(handed, [[1, VALID, 0]]);
  });

  test('levels are re-checked on resume: active fires, gone-again does not', () => {
    const { lines, dev, enable, handed } = setup();
    enable(0, IrqType.LEVEL_HIGH);
    enable(1, IrqType.LEVEL_HIGH);
    dev.queueEventBuffer(0, 10);
    dev.queueEventBuffer(1, 11);
    dev.suspendEvents();
    lines.setInput(0, 1);
    lines.setInput(1, 1);
    lines.setInput(1, 0);
    assert.deepEqual(handed, []);
    dev.resumeEvents();
    assert.deepEqual(handed, [[10, VALID, 0]]);
  });

  test('disable while suspended still hands the buffer back INVALID (the transport holds it)', () => {
    const { dev, handle, enable, handed } = setup();
    enable(0, IrqType.EDGE_RISING);
    dev.queueEventBuffer(0, 1);
    dev.suspendEvents();
    handle(SET_IRQ_TYPE, 0, IrqType.NONE);
    assert.deepEqual(handed, [[1, INVALID, 0]]);
  });
});

describe('resetDriverState / dropEventBuffers', () => {
  test('keeps directions, values and inputs; drops types, latches and buffers silently', () => {
    const { lines, dev, handle, enable, handed, snap } = setup();
    handle(SET_VALUE, 0, 1);
    handle(SET_DIRECTION, 0, Direction.OUT);
    lines.setInput(1, 1);
    enable(1, IrqType.EDGE_FALLING);
    enable(2, IrqType.EDGE_RISING);
    dev.queueEventBuffer(1, 1);
    lines.setInput(2, 1); // latched on line 2
    dev.suspendEvents();
    dev.resetDriverState();
    assert.deepEqual(handed, [], 'held buffers are dropped without touching the ring');
    assert.equal(lines.output(0), 1);
    assert.equal(lines.direction(1), Direction.IN);
    assert.equal(lines.input(1), 1);
    const s = dev.snapshot();
    assert.deepEqual(
      s.map((x) => [x.direction, x.value, x.irqType, x.armed, x.latched]),
      [
        [Direction.OUT, 1, IrqType.NONE, false, false],
        [Direction.IN, 1, IrqType.NONE, false, false],
        [Direction.IN, 1, IrqType.NONE, false, false],
        [Direction.NONE, 0, IrqType.NONE, false, false],
      ],
    );
    // Events are no longer suspended, and nothing is enabled: a new driver starts clean.
    lines.setInput(1, 0);
    assert.equal(snap(1).latched, false);
    enable(2, IrqType.EDGE_FALLING);
    dev.queueEventBuffer(2, 5);
    lines.setInput(2, 0);
    assert.deepEqual(handed, [[5, VALID, 2]]);
  });

  test('dropEventBuffers forgets held buffers but keeps types', () => {
    const { lines, dev, enable, handed, snap } = setup();
    enable(0, IrqType.EDGE_RISING);
    dev.queueEventBuffer(0, 1);
    dev.dropEventBuffers();
    assert.equal(snap(0).armed, false);
    assert.equal(snap(0).irqType, IrqType.EDGE_RISING);
    lines.setInput(0, 1);
    assert.deepEqual(handed, []);
    assert.equal(snap(0).latched, true);
  });
});

describe('events for watchers', () => {
  test("'irq' is emitted for every hand-back, after the sink", () => {
    const { lines, dev, enable } = setup();
    const seen: string[] = [];
    dev.setEventSink((t, s, l) => seen.push(`sink ${t} ${s} ${l}`));
    dev.on('irq', (l, s) => seen.push(`irq ${l} ${s}`));
    enable(0, IrqType.EDGE_RISING);
    dev.queueEventBuffer(0, 1);
    lines.setInput(0, 1);
    dev.queueEventBuffer(3, 2);
    assert.deepEqual(seen, [
      `sink 1 ${VALID} 0`,
      `irq 0 ${VALID}`,
      `sink 2 ${INVALID} 3`,
      `irq 3 ${INVALID}`,
    ]);
  });

  test('a hand-back with no sink set throws (a wiring bug, not a silent loss)', () => {
    const { lines, dev, enable } = setup();
    enable(0, IrqType.EDGE_RISING);
    dev.queueEventBuffer(0, 1);
    dev.setEventSink(null);
    assert.throws(() => lines.setInput(0, 1), /no event sink/);
  });
});
