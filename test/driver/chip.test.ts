// Chip and LineRequest over loopback: names, requesting lines, values, reconfigure, release, errors,
// and how requests reach the device (one per line at a time, many lines at once). RN cites a driver
// rule of docs/protocol.md.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Direction, IrqType, MessageType } from '../../src/protocol/constants.ts';
import { openLoopbackChip } from '../../src/compose/loopback-chip.ts';
import { GpioLineError, type GpioLineErrorCode } from '../../src/driver/gpio-line-error.ts';
import { settle, spyRequests } from './helpers.ts';

const { GET_VALUE, SET_VALUE, SET_DIRECTION, SET_IRQ_TYPE } = MessageType;

const rejectsWith = (p: Promise<unknown>, code: GpioLineErrorCode) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof GpioLineError, `not a GpioLineError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.name, 'GpioLineError');
    return true;
  });

describe('chip', () => {
  test('names are read from the device; unnamed lines are empty', async () => {
    const { chip } = await openLoopbackChip({ lines: 5, names: ['button', '', 'led'] });
    assert.deepEqual(chip.driver.names, ['button', '', 'led', '', '']);
    assert.deepEqual(await chip.info(), { name: 'virtio-gpio', label: 'virtio-gpio', numLines: 5 });
    const info = await chip.lineInfo(2);
    assert.deepEqual(info, {
      offset: 2,
      name: 'led',
      used: false,
      consumer: '',
      direction: 'as-is',
      edge: 'none',
    });
    await rejectsWith(chip.lineInfo(5), 'EINVAL');
    await chip.close();
  });

  test('no names on the device: all empty', async () => {
    const { chip } = await openLoopbackChip({ lines: 3 });
    assert.deepEqual(chip.driver.names, ['', '', '']);
    await chip.close();
  });

  test('requestLines: inputs read the wire, outputs drive it (SET_VALUE before SET_DIRECTION OUT)', async () => {
    const lb = await openLoopbackChip({ lines: 4 });
    const spy = spyRequests(lb);
    const { chip, lines } = lb;
    lines.setInput(0, 1);
    const req = await chip.requestLines({
      consumer: 'test',
      lines: {
        0: { direction: 'input' },
        1: { direction: 'output', outputValue: 1 },
        2: { direction: 'output' },
      },
    });
    assert.deepEqual(spy.forLine(1), [
      [SET_VALUE, 1],
      [SET_DIRECTION, Direction.OUT],
    ]);
    assert.deepEqual(spy.forLine(2), [
      [SET_VALUE, 0],
      [SET_DIRECTION, Direction.OUT],
    ]);
    assert.equal(lines.direction(0), Direction.IN);
    assert.equal(lines.output(1), 1);
    assert.equal(lines.output(2), 0);
    assert.equal(await req.getValue(0), 1);
    lines.setInput(0, 0);
    assert.equal(await req.getValue(0), 0);
    await req.setValue(2, 1);
    assert.equal(lines.output(2), 1);
    await req.setValues({ 1: 0, 2: 0 });
    assert.deepEqual([lines.output(1), lines.output(2)], [0, 0]);
    lines.setInput(0, 1);
    assert.deepEqual(await req.getValues(), [1, 0, 0]);
    assert.deepEqual(await req.getValues([2, 0]), [0, 1]);
    const info = await chip.lineInfo(1);
    assert.deepEqual([info.used, info.consumer, info.direction], [true, 'test', 'output']);
    await chip.close();
  });

  test('reconfigure: output to input and back, value first', async () => {
    const lb = await openLoopbackChip({ lines: 2 });
    const { chip, lines } = lb;
    const req = await chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 1 } } });
    lines.setInput(0, 0);
    await req.reconfigure({ lines: { 0: { direction: 'input' } } });
    assert.equal(lines.direction(0), Direction.IN);
    assert.equal(await req.getValue(0), 0);
    await rejectsWith(req.setValue(0, 1), 'EPERM');
    const spy = spyRequests(lb);
    await req.reconfigure({ lines: { 0: { direction: 'output', outputValue: 1 } } });
    assert.deepEqual(spy.forLine(0), [
      [SET_VALUE, 1],
      [SET_DIRECTION, Direction.OUT],
    ]);
    assert.equal(lines.output(0), 1);
    await rejectsWith(req.reconfigure({ lines: { 1: { direction: 'input' } } }), 'EINVAL');
    await chip.close();
  });

  test('release: interrupts off and direction NONE on the device; the lines are free again', async () => {
    const lb = await openLoopbackChip({ lines: 3 });
    const { chip, lines, device } = lb;
    const req = await chip.requestLines({
      consumer: 'a',
      lines: { 0: { direction: 'input', edge: 'both' }, 1: { direction: 'output', outputValue: 1 } },
    });
    await settle(lb);
    assert.equal(device.snapshot()[0].armed, true);
    const spy = spyRequests(lb);
    await req.release();
    assert.deepEqual(spy.forLine(0), [
      [SET_IRQ_TYPE, IrqType.NONE],
      [SET_DIRECTION, Direction.NONE],
    ]);
    assert.deepEqual(spy.forLine(1), [[SET_DIRECTION, Direction.NONE]]);
    assert.deepEqual(
      device.snapshot().map((s) => [s.direction, s.irqType, s.armed]),
      [
        [Direction.NONE, IrqType.NONE, false],
        [Direction.NONE, IrqType.NONE, false],
        [Direction.NONE, IrqType.NONE, false],
      ],
    );
    assert.equal(lines.direction(0), Direction.NONE);
    assert.equal(lines.output(1), null);
    assert.equal(device.snapshot()[0].counters.invalid, 1, 'the armed buffer came back INVALID');
    assert.deepEqual((await chip.lineInfo(0)).used, false);
    await rejectsWith(req.getValue(0), 'EBADF');
    assert.throws(
      () => req.edgeEvents(),
      (e: unknown) => e instanceof GpioLineError && e.code === 'EBADF',
    );
    await req.release(); // idempotent
    const again = await chip.requestLines({
      lines: { 0: { direction: 'input' }, 1: { direction: 'input' } },
    });
    assert.deepEqual(again.offsets, [0, 1]);
    await chip.close();
  });

  test('EBUSY for a line already in a request; the other lines stay free', async () => {
    const { chip } = await openLoopbackChip({ lines: 3 });
    const a = await chip.requestLines({ consumer: 'a', lines: { 0: { direction: 'input' } } });
    await rejectsWith(
      chip.requestLines({ lines: { 1: { direction: 'input' }, 0: { direction: 'input' } } }),
      'EBUSY',
    );
    const b = await chip.requestLines({ consumer: 'b', lines: { 1: { direction: 'input' } } });
    assert.equal((await chip.lineInfo(0)).consumer, 'a');
    assert.equal((await chip.lineInfo(1)).consumer, 'b');
    await a.release();
    await b.release();
    await chip.close();
  });

  test('EPERM: setValue on an input never reaches the device', async () => {
    const lb = await openLoopbackChip({ lines: 2 });
    const req = await lb.chip.requestLines({ lines: { 0: { direction: 'input' } } });
    const spy = spyRequests(lb);
    await rejectsWith(req.setValue(0, 1), 'EPERM');
    await rejectsWith(req.setValue(1, 1), 'EINVAL');
    assert.deepEqual(spy.requests, []);
    await lb.chip.close();
  });

  test('ENODEV: edge detection on a device without interrupts; the lines stay free', async () => {
    const { chip } = await openLoopbackChip({ lines: 2, device: { irq: false } });
    assert.equal(chip.driver.irqSupported, false);
    await rejectsWith(chip.requestLines({ lines: { 0: { direction: 'input', edge: 'rising' } } }), 'ENODEV');
    assert.equal((await chip.lineInfo(0)).used, false);
    const plain = await chip.requestLines({ lines: { 0: { direction: 'input' } } });
    assert.equal(await plain.getValue(0), 0, 'lines without edges still work');
    await chip.close();
  });

  test('the driver underneath: EINVAL for a line past ngpio, EBADF once closed', async () => {
    const { chip } = await openLoopbackChip({ lines: 2 });
    await rejectsWith(
      chip.driver.enableIrq(2, IrqType.EDGE_RISING, () => {}),
      'EINVAL',
    );
    await chip.close();
    await rejectsWith(chip.driver.getValue(0), 'EBADF');
  });

  test('release frees its lines even when the device cannot be told, and reports the failure', async () => {
    const { chip } = await openLoopbackChip({ lines: 2 });
    const req = await chip.requestLines({
      lines: { 0: { direction: 'output', outputValue: 1 }, 1: { direction: 'input', edge: 'both' } },
    });
    await chip.driver.close();
    await rejectsWith(req.release(), 'EBADF');
    // Freed: a new request fails on the closed driver (EBADF), not on a line still held (EBUSY).
    await rejectsWith(
      chip.requestLines({ lines: { 0: { direction: 'input' }, 1: { direction: 'input' } } }),
      'EBADF',
    );
  });

  test('EINVAL: bad offsets, empty requests, edges on outputs, output values other than 0/1', async () => {
    const { chip } = await openLoopbackChip({ lines: 2 });
    await rejectsWith(chip.requestLines({ lines: { 2: { direction: 'input' } } }), 'EINVAL');
    await rejectsWith(chip.requestLines({ lines: {} }), 'EINVAL');
    await rejectsWith(chip.requestLines({ lines: { 0: { direction: 'output', edge: 'rising' } } }), 'EINVAL');
    await rejectsWith(
      chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 2 as 0 | 1 } } }),
      'EINVAL',
    );
    assert.equal((await chip.lineInfo(0)).used, false, 'a failed request frees its lines');
    await chip.close();
  });
});

describe('requests in flight (R4)', () => {
  test('many lines at once: the device pops them all in one kick', async () => {
    const lb = await openLoopbackChip({ lines: 64 });
    const lines = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [i, { direction: 'input' as const }]),
    );
    const req = await lb.chip.requestLines({ lines });
    for (let i = 0; i < 64; i += 3) lb.lines.setInput(i, 1);
    const spy = spyRequests(lb);
    const values = await req.getValues();
    assert.deepEqual(
      values,
      Array.from({ length: 64 }, (_, i) => (i % 3 === 0 ? 1 : 0)),
    );
    assert.deepEqual(
      spy.batches.map((b) => b.length),
      [64],
    );
    assert.deepEqual(
      spy.batches[0].map((r) => r.gpio),
      Array.from({ length: 64 }, (_, i) => i),
    );
    await lb.chip.close();
  });

  test('at most one request per line in flight, answered in issue order', async () => {
    const lb = await openLoopbackChip({ lines: 4 });
    const req = await lb.chip.requestLines({
      lines: { 0: { direction: 'output' }, 1: { direction: 'input' }, 2: { direction: 'input' } },
    });
    const spy = spyRequests(lb);
    const d = lb.chip.driver;
    const results = await Promise.all([
      d.setValue(0, 1),
      d.getValue(0),
      d.getValue(1),
      d.setValue(0, 0),
      d.getValue(2),
      d.getValue(0),
      d.setValue(0, 1),
      d.getValue(0),
    ]);
    assert.deepEqual(results, [undefined, 1, 0, undefined, 0, 0, undefined, 1]);
    assert.deepEqual(spy.forLine(0), [
      [SET_VALUE, 1],
      [GET_VALUE, 0],
      [SET_VALUE, 0],
      [GET_VALUE, 0],
      [SET_VALUE, 1],
      [GET_VALUE, 0],
    ]);
    for (const b of spy.batches) {
      const gpios = b.map((r) => r.gpio);
      assert.equal(new Set(gpios).size, gpios.length, `one kick held two requests for a line: ${gpios}`);
    }
    assert.equal(spy.batches.length, 6, 'line 0 needs six round trips');
    assert.deepEqual(
      spy.batches[0].map((r) => r.gpio),
      [0, 1, 2],
      'the first kick carries one request for each line',
    );
    await req.release();
    await lb.chip.close();
  });
});
