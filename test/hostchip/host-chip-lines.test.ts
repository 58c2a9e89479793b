import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { HostChipLines, type HostChipOptions } from '../../src/hostchip/host-chip-lines.ts';
import { Direction, IrqStatus, IrqType, MessageType, Status } from '../../src/protocol/constants.ts';
import { FakeGpioChip } from './fake-gpio-chip.ts';

const INPUT = 1n << 2n;
const OUTPUT = 1n << 3n;
const RISING = 1n << 4n;
const FALLING = 1n << 5n;

interface Rig {
  chip: FakeGpioChip;
  lines: HostChipLines;
  dev: GpioDevice<number>;
  logs: string[];
  irqs: Array<[token: number, status: IrqStatus, line: number]>;
  req(type: number, gpio: number, value?: number): { status: number; value: number };
  settle(): Promise<void>;
}

function rig(names = ['led', 'button', 'irq', '', 'led'], opts: Partial<HostChipOptions> = {}): Rig {
  const chip = new FakeGpioChip('/dev/gpiochip9', names);
  const logs: string[] = [];
  const lines = HostChipLines.open({
    path: '/dev/gpiochip9',
    io: chip,
    log: (level, msg) => logs.push(`${level} ${msg}`),
    ...opts,
  });
  const dev = new GpioDevice<number>(lines);
  dev.setIrqSupported(true);
  const irqs: Rig['irqs'] = [];
  dev.setEventSink((token, status, line) => irqs.push([token, status, line]));
  return {
    chip,
    lines,
    dev,
    logs,
    irqs,
    req: (type, gpio, value = 0) => dev.handle({ type, gpio, value }),
    settle: async () => {
      for (let i = 0; i < 5; i++) await nextTurn();
    },
  };
}

describe('HostChipLines: opening a chip', () => {
  it("serves every line with the chip's names; a repeated name stays on its first line", () => {
    const r = rig();
    assert.equal(r.lines.ngpio, 5);
    assert.deepEqual(r.lines.names, ['led', 'button', 'irq', '', '']);
    assert.equal(r.lines.chip.label, 'fake-chip');
    assert.equal(r.chip.openFds(), 1, 'only the chip fd: nothing is requested before the guest asks');
    r.lines.close();
    assert.equal(r.chip.openFds(), 0);
  });

  it('serves the selected offsets in the given order, and refuses bad selections by name', () => {
    const r = rig(undefined, { lines: [2, 0] });
    assert.deepEqual(r.lines.names, ['irq', 'led']);
    assert.equal(r.req(MessageType.SET_DIRECTION, 0, Direction.IN).status, Status.OK);
    assert.ok(r.chip.requestOf(2), 'guest line 0 is chip offset 2');
    r.lines.close();
    const chip = new FakeGpioChip('/dev/gpiochip9', ['a', 'b']);
    assert.throws(
      () => HostChipLines.open({ path: '/dev/gpiochip9', io: chip, lines: [0, 5] }),
      /no line 5 \(gpiochip9 has lines 0\.\.1\)/,
    );
    assert.throws(
      () => HostChipLines.open({ path: '/dev/gpiochip9', io: chip, lines: [1, 1] }),
      /line 1 is listed twice/,
    );
    assert.throws(
      () => HostChipLines.open({ path: '/dev/nope', io: chip }),
      /cannot open GPIO chip \/dev\/nope: open: ENOENT/,
    );
    assert.throws(
      () => HostChipLines.open({ path: '/dev/gpiochip9', io: chip, arch: 'mips' }),
      /not supported on mips/,
    );
    assert.equal(chip.openFds(), 0, 'a refused open leaves no fd behind');
  });
});

describe('HostChipLines: directions and values', () => {
  it('requests a line at the first SET_DIRECTION with consumer vgpio and the stored value, releases it at NONE', () => {
    const r = rig();
    assert.equal(r.req(MessageType.SET_VALUE, 0, 1).status, Status.OK, 'a value stored before the direction');
    assert.equal(r.chip.requestOf(0), undefined);
    assert.equal(r.req(MessageType.SET_DIRECTION, 0, Direction.OUT).status, Status.OK);
    const req = r.chip.requestOf(0);
    assert.ok(req);
    assert.equal(req.consumer, 'vgpio');
    assert.equal(req.flags, OUTPUT, 'OUTPUT only: no ACTIVE_LOW, no bias or drive flags');
    assert.equal(req.driven, 1, 'OUTPUT_VALUES carried the stored SET_VALUE');
    const getLine = r.chip.ioctls.find((i) => i.request === 0xc250b407);
    assert.equal(getLine?.outputValue, 1n);
    assert.equal(r.req(MessageType.SET_VALUE, 0, 0).status, Status.OK);
    assert.equal(req.driven, 0);
    assert.deepEqual(r.req(MessageType.GET_VALUE, 0), { status: Status.OK, value: 0 });
    // OUT -> IN reconfigures the same request (SET_CONFIG), no second GET_LINE.
    r.chip.lines[0].input = 1;
    assert.equal(r.req(MessageType.SET_DIRECTION, 0, Direction.IN).status, Status.OK);
    assert.equal(r.chip.requestOf(0), req);
    assert.equal(req.flags, INPUT);
    assert.deepEqual(r.req(MessageType.GET_VALUE, 0), { status: Status.OK, value: 1 });
    assert.equal(r.chip.ioctls.filter((i) => i.request === 0xc250b407).length, 1);
    assert.equal(r.req(MessageType.SET_DIRECTION, 0, Direction.NONE).status, Status.OK);
    assert.equal(r.chip.requestOf(0), undefined, 'released');
    assert.equal(r.chip.openFds(), 1);
    r.lines.close();
  });

  it('an unrequested line reads 0 and is not requested by reading it', () => {
    const r = rig();
    r.chip.lines[1].input = 1;
    assert.deepEqual(r.req(MessageType.GET_VALUE, 1), { status: Status.OK, value: 0 });
    assert.equal(r.chip.requestOf(1), undefined);
    r.lines.close();
  });
});

describe('HostChipLines: interrupts', () => {
  it("edge types map to the kernel's edge detection; an armed edge is delivered from the event", async () => {
    const r = rig();
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.EDGE_RISING).status, Status.OK);
    const req = r.chip.requestOf(1);
    assert.equal(req?.flags, INPUT | RISING, 'requested as an input by the IRQ type itself');
    r.dev.queueEventBuffer(1, 11);
    r.chip.setInput(1, 1);
    await r.settle();
    assert.deepEqual(r.irqs, [[11, IrqStatus.VALID, 1]]);
    // The falling edge is not detected (not requested) and not delivered; the next rising is.
    r.dev.queueEventBuffer(1, 12);
    r.chip.setInput(1, 0);
    await r.settle();
    assert.equal(r.irqs.length, 1);
    r.chip.setInput(1, 1);
    await r.settle();
    assert.deepEqual(r.irqs[1], [12, IrqStatus.VALID, 1]);
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.NONE).status, Status.OK);
    assert.equal(req?.flags, INPUT, 'type NONE turns edge detection off');
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.EDGE_FALLING).status, Status.OK);
    assert.equal(req?.flags, INPUT | FALLING);
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.NONE).status, Status.OK);
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.EDGE_BOTH).status, Status.OK);
    assert.equal(req?.flags, INPUT | RISING | FALLING);
    r.lines.close();
  });

  it('kernel events while masked latch and coalesce into one delivery; the fd is drained', async () => {
    const r = rig();
    r.req(MessageType.SET_IRQ_TYPE, 2, IrqType.EDGE_BOTH);
    for (let i = 0; i < 9; i++) r.chip.setInput(2, i % 2 === 0 ? 1 : 0);
    await r.settle();
    assert.equal(r.chip.requestOf(2)?.events.length, 0, 'every event read');
    assert.equal(r.irqs.length, 0, 'masked: nothing delivered');
    const snap = r.dev.snapshot()[2];
    assert.equal(snap.latched, true);
    assert.equal(snap.counters.latched, 1);
    assert.equal(snap.counters.coalesced, 8);
    r.dev.queueEventBuffer(2, 21);
    assert.deepEqual(r.irqs, [[21, IrqStatus.VALID, 2]], 'the latch fires when the buffer arrives');
    r.dev.queueEventBuffer(2, 22);
    assert.equal(r.irqs.length, 1, 'one delivery for the nine edges');
    r.lines.close();
  });

  it('SET_IRQ_TYPE NONE hands the held buffer back INVALID', () => {
    const r = rig();
    r.req(MessageType.SET_IRQ_TYPE, 2, IrqType.EDGE_RISING);
    r.dev.queueEventBuffer(2, 31);
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 2, IrqType.NONE).status, Status.OK);
    assert.deepEqual(r.irqs, [[31, IrqStatus.INVALID, 2]]);
    r.lines.close();
  });

  it('level types are emulated: both edges requested, the level re-checked with GET_VALUES when a buffer arrives', async () => {
    const r = rig();
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 2, IrqType.LEVEL_HIGH).status, Status.OK);
    assert.equal(r.chip.requestOf(2)?.flags, INPUT | RISING | FALLING);
    r.dev.queueEventBuffer(2, 41);
    assert.equal(r.irqs.length, 0, 'low: held');
    r.chip.setInput(2, 1);
    await r.settle();
    assert.deepEqual(r.irqs, [[41, IrqStatus.VALID, 2]]);
    const before = r.chip.ioctls.filter((i) => i.request === 0xc010b40e).length;
    r.dev.queueEventBuffer(2, 42);
    assert.deepEqual(r.irqs[1], [42, IrqStatus.VALID, 2], 'still high: the new buffer fires at once');
    assert.ok(
      r.chip.ioctls.filter((i) => i.request === 0xc010b40e).length > before,
      'checked with GET_VALUES',
    );
    // The level drops while the driver has no buffer out: no event is needed to see it.
    r.chip.lines[2].input = 0; // without an event (e.g. lost): GET_VALUES still sees it
    r.dev.queueEventBuffer(2, 43);
    assert.equal(r.irqs.length, 2, 'low now: held');
    r.lines.close();
  });

  it('LEVEL_LOW fires at once on a low line', () => {
    const r = rig();
    r.req(MessageType.SET_IRQ_TYPE, 3, IrqType.LEVEL_LOW);
    r.dev.queueEventBuffer(3, 51);
    assert.deepEqual(r.irqs, [[51, IrqStatus.VALID, 3]]);
    r.lines.close();
  });
});

describe('HostChipLines: faults', () => {
  it('a line busy in another process: STATUS_ERR, a log line naming the holder, the line unchanged', () => {
    const r = rig();
    r.chip.lines[4].heldBy = 'gpioset';
    assert.equal(r.req(MessageType.SET_DIRECTION, 4, Direction.OUT).status, Status.ERR);
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 4, IrqType.EDGE_BOTH).status, Status.ERR);
    assert.deepEqual(r.req(MessageType.GET_DIRECTION, 4), { status: Status.OK, value: Direction.NONE });
    assert.equal(r.dev.snapshot()[4].irqType, IrqType.NONE);
    assert.match(r.logs.join('\n'), /warn line 4 \(\/dev\/gpiochip9 offset 4\) is busy: held by "gpioset"/);
    // Other lines are served, and the line works once its holder lets go.
    assert.equal(r.req(MessageType.SET_DIRECTION, 0, Direction.OUT).status, Status.OK);
    r.chip.lines[4].heldBy = null;
    assert.equal(r.req(MessageType.SET_DIRECTION, 4, Direction.IN).status, Status.OK);
    r.lines.close();
  });

  it('a chip that disappears: its lines answer ERR, logged once; another chip keeps serving', async () => {
    const r = rig();
    const other = rig(['x']);
    r.req(MessageType.SET_DIRECTION, 0, Direction.OUT);
    r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.EDGE_BOTH);
    r.dev.queueEventBuffer(1, 61);
    const gone: string[] = [];
    r.lines.onGone((reason) => gone.push(reason));
    r.chip.unplugged = true;
    assert.equal(r.req(MessageType.GET_VALUE, 0).status, Status.ERR);
    assert.equal(r.req(MessageType.SET_VALUE, 0, 1).status, Status.ERR);
    assert.equal(r.req(MessageType.SET_DIRECTION, 2, Direction.IN).status, Status.ERR);
    assert.equal(r.req(MessageType.GET_VALUE, 1).status, Status.ERR);
    assert.equal(r.lines.state, 'gone');
    assert.deepEqual(gone, ['GET_VALUES: ENODEV'], 'onGone: once');
    assert.deepEqual(
      r.logs.filter((l) => l.includes('is gone')),
      ['error GPIO chip /dev/gpiochip9 is gone (GET_VALUES: ENODEV): its lines answer ERR'],
    );
    // Releasing still works (the guest or a disconnect cleans up), and a snapshot does not throw.
    assert.equal(r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.NONE).status, Status.OK);
    assert.deepEqual(r.irqs, [[61, IrqStatus.INVALID, 1]]);
    assert.equal(r.dev.snapshot().length, 5);
    r.dev.resetDriverState();
    assert.equal(other.req(MessageType.SET_DIRECTION, 0, Direction.OUT).status, Status.OK);
    assert.equal(other.req(MessageType.SET_VALUE, 0, 1).status, Status.OK);
    assert.equal(other.chip.requestOf(0)?.driven, 1);
    r.lines.close();
    other.lines.close();
  });

  it('an event read that fails with ENODEV marks the chip gone', async () => {
    const r = rig();
    r.req(MessageType.SET_IRQ_TYPE, 1, IrqType.EDGE_BOTH);
    r.chip.setInput(1, 1);
    r.chip.unplugged = true;
    await r.settle();
    assert.equal(r.lines.state, 'gone');
    assert.equal(r.logs.filter((l) => l.includes('is gone')).length, 1);
    r.lines.close();
  });
});
