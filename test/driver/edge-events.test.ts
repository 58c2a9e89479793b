// Edge events and the interrupt protocol seen from the driver, over loopback: event types and
// sequence numbers, masking while a handler or an iterator holds an event, type changes through
// NONE, disabling, and the races around disable (docs/protocol.md §4 driver rules RN, §5).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EdgeEvent } from '../../src/driver/edge-event.ts';
import { Direction, IrqStatus, IrqType, MessageType } from '../../src/protocol/constants.ts';
import { openLoopbackChip } from '../../src/compose/loopback-chip.ts';
import { brief, gate, settle, spyRequests } from './helpers.ts';

const { SET_IRQ_TYPE, SET_DIRECTION } = MessageType;

async function withInput(edge: 'rising' | 'falling' | 'both', ngpio = 2) {
  const lb = await openLoopbackChip({ lines: ngpio });
  const req = await lb.chip.requestLines({ consumer: 't', lines: { 0: { direction: 'input', edge } } });
  const events: EdgeEvent[] = [];
  req.on('edge', (e) => events.push(e));
  await settle(lb);
  return { ...lb, req, events };
}

describe('edge events', () => {
  test('rising: only 0→1 edges, lineSeqno counts them', async () => {
    const { chip, lines, events } = await withInput('rising');
    for (const v of [1, 0, 1, 0] as const) {
      lines.setInput(0, v);
      await settle(chip.driver);
    }
    assert.deepEqual(events.map(brief), [
      { type: 'rising', offset: 0, seqno: 1, lineSeqno: 1 },
      { type: 'rising', offset: 0, seqno: 2, lineSeqno: 2 },
    ]);
    await chip.close();
  });

  test('falling: only 1→0 edges', async () => {
    const { chip, lines, events } = await withInput('falling');
    for (const v of [1, 0, 1, 0] as const) {
      lines.setInput(0, v);
      await settle(chip.driver);
    }
    assert.deepEqual(events.map(brief), [
      { type: 'falling', offset: 0, seqno: 1, lineSeqno: 1 },
      { type: 'falling', offset: 0, seqno: 2, lineSeqno: 2 },
    ]);
    await chip.close();
  });

  test('both: every edge, typed by the level read back', async () => {
    const { chip, lines, events } = await withInput('both');
    for (const v of [1, 0, 1] as const) {
      lines.setInput(0, v);
      await settle(chip.driver);
    }
    assert.deepEqual(
      events.map((e) => [e.type, e.lineSeqno]),
      [
        ['rising', 1],
        ['falling', 2],
        ['rising', 3],
      ],
    );
    await chip.close();
  });

  test('seqno counts across the request, lineSeqno per line', async () => {
    const lb = await openLoopbackChip({ lines: 3 });
    const req = await lb.chip.requestLines({
      lines: { 0: { direction: 'input', edge: 'rising' }, 2: { direction: 'input', edge: 'falling' } },
    });
    const events: EdgeEvent[] = [];
    req.on('edge', (e) => events.push(e));
    await settle(lb);
    lb.lines.setInput(2, 1); // not an event for 'falling'
    lb.lines.setInput(0, 1);
    await settle(lb);
    lb.lines.setInput(2, 0);
    await settle(lb);
    lb.lines.setInput(0, 0);
    lb.lines.setInput(0, 1);
    await settle(lb);
    assert.deepEqual(events.map(brief), [
      { type: 'rising', offset: 0, seqno: 1, lineSeqno: 1 },
      { type: 'falling', offset: 2, seqno: 2, lineSeqno: 1 },
      { type: 'rising', offset: 0, seqno: 3, lineSeqno: 2 },
    ]);
    assert.ok(events.every((e) => typeof e.timestampNs === 'bigint' && e.timestampNs > 0n));
    await lb.chip.close();
  });
});

describe('masking while an event is being handled (R8, §5)', () => {
  test('an async handler keeps the line masked; an edge meanwhile is delivered once afterwards', async () => {
    const { chip, lines, device, req } = await withInput('both');
    const seen: Array<{ ev: ReturnType<typeof brief>; armedDuring: boolean }> = [];
    const first = gate();
    req.setEdgeHandler(async (ev) => {
      seen.push({ ev: brief(ev), armedDuring: device.snapshot()[0].armed });
      if (ev.lineSeqno === 1) {
        lines.setInput(0, 0); // two edges while masked: latched once
        lines.setInput(0, 1);
        await first.promise;
      }
    });
    lines.setInput(0, 1);
    await settle(chip.driver);
    await settle(chip.driver);
    assert.equal(seen.length, 1);
    assert.equal(device.snapshot()[0].armed, false, 'still masked while the handler runs');
    assert.equal(device.snapshot()[0].latched, true);
    first.open();
    await settle(chip.driver);
    assert.deepEqual(seen, [
      { ev: { type: 'rising', offset: 0, seqno: 1, lineSeqno: 1 }, armedDuring: false },
      { ev: { type: 'rising', offset: 0, seqno: 2, lineSeqno: 2 }, armedDuring: false },
    ]);
    assert.deepEqual(device.snapshot()[0].counters, {
      edges: 3,
      delivered: 2,
      latched: 1,
      coalesced: 1,
      invalid: 0,
    });
    assert.equal(device.snapshot()[0].armed, true, 'unmasked again once the handler finished');
    await chip.close();
  });

  test('a throwing handler still acknowledges', async () => {
    const { chip, lines, device, req } = await withInput('rising');
    let calls = 0;
    req.setEdgeHandler(async () => {
      calls++;
      throw new Error('boom');
    });
    lines.setInput(0, 1);
    await settle(chip.driver);
    assert.equal(calls, 1);
    assert.equal(device.snapshot()[0].armed, true);
    await chip.close();
  });

  test('iterator: an event is acknowledged when the next one is asked for', async () => {
    const { chip, lines, device, req } = await withInput('both');
    const it = req.edgeEvents();
    lines.setInput(0, 1);
    const e1 = await it.next();
    assert.deepEqual(brief(e1.value as EdgeEvent), { type: 'rising', offset: 0, seqno: 1, lineSeqno: 1 });
    await settle(chip.driver);
    assert.equal(device.snapshot()[0].armed, false, 'held by the consumer: masked');
    lines.setInput(0, 0);
    lines.setInput(0, 1);
    lines.setInput(0, 0);
    await settle(chip.driver);
    assert.equal(device.snapshot()[0].counters.delivered, 1);
    const e2 = await it.next(); // acks e1: the latched edge comes at once
    assert.deepEqual(brief(e2.value as EdgeEvent), { type: 'falling', offset: 0, seqno: 2, lineSeqno: 2 });
    await settle(chip.driver);
    assert.equal(device.snapshot()[0].armed, false, 'e2 is held now');
    const done = await it.return?.();
    assert.deepEqual(done, { value: undefined, done: true });
    await settle(chip.driver);
    assert.equal(device.snapshot()[0].armed, true, 'return() acknowledged e2');
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.deepEqual(device.snapshot()[0].counters, {
      edges: 4,
      delivered: 2,
      latched: 1,
      coalesced: 2,
      invalid: 0,
    });
    await chip.close();
  });

  test('an event waits for every consumer: handler and two iterators', async () => {
    const { chip, lines, device, req } = await withInput('rising');
    const a = req.edgeEvents();
    const b = req.edgeEvents();
    const h = gate();
    req.setEdgeHandler(() => h.promise);
    lines.setInput(0, 1);
    assert.equal((await a.next()).done, false);
    assert.equal((await b.next()).done, false);
    const an = a.next(); // a acks
    const bn = b.next(); // b acks
    await settle(chip.driver);
    assert.equal(device.snapshot()[0].armed, false, 'the handler still runs');
    h.open();
    await settle(chip.driver);
    assert.equal(device.snapshot()[0].armed, true);
    lines.setInput(0, 0);
    lines.setInput(0, 1);
    assert.equal(((await an).value as EdgeEvent).lineSeqno, 2);
    assert.equal(((await bn).value as EdgeEvent).lineSeqno, 2);
    await a.return?.();
    await b.return?.();
    await chip.close();
  });

  test('release ends the iterators and acknowledges what they held', async () => {
    const { chip, lines, req } = await withInput('rising');
    const it = req.edgeEvents();
    lines.setInput(0, 1);
    await it.next();
    const pending = it.next(); // waits for an event that never comes
    await req.release();
    assert.deepEqual(await pending, { value: undefined, done: true });
    await chip.close();
  });
});

describe('enable, change, disable (R6, R10, R11)', () => {
  test('changing the edge type goes through NONE', async () => {
    const lb = await withInput('rising');
    const spy = spyRequests(lb);
    await lb.req.reconfigure({ lines: { 0: { direction: 'input', edge: 'falling' } } });
    assert.deepEqual(spy.forLine(0), [
      [SET_IRQ_TYPE, IrqType.NONE],
      [SET_DIRECTION, Direction.IN],
      [SET_IRQ_TYPE, IrqType.EDGE_FALLING],
    ]);
    await settle(lb);
    assert.equal(lb.device.snapshot()[0].armed, true);
    assert.equal(lb.device.snapshot()[0].counters.invalid, 1, 'the old buffer came back INVALID');
    lb.lines.setInput(0, 1);
    lb.lines.setInput(0, 0);
    await settle(lb);
    assert.deepEqual(lb.events.map(brief), [{ type: 'falling', offset: 0, seqno: 1, lineSeqno: 1 }]);
    // The driver API does the same.
    spy.requests.length = 0;
    await lb.chip.driver.enableIrq(0, IrqType.LEVEL_HIGH, () => {});
    assert.deepEqual(spy.forLine(0), [
      [SET_IRQ_TYPE, IrqType.NONE],
      [SET_IRQ_TYPE, IrqType.LEVEL_HIGH],
    ]);
    // Same type again: nothing sent.
    spy.requests.length = 0;
    await lb.chip.driver.enableIrq(0, IrqType.LEVEL_HIGH, () => {});
    assert.deepEqual(spy.requests, []);
    await lb.chip.close();
  });

  test('disable: the buffer comes back INVALID, events stop', async () => {
    const lb = await withInput('both');
    lb.lines.setInput(0, 1);
    await settle(lb);
    assert.equal(lb.events.length, 1);
    const invalid: number[] = [];
    lb.device.on('irq', (line, status) => status === IrqStatus.INVALID && invalid.push(line));
    await lb.req.reconfigure({ lines: { 0: { direction: 'input', edge: 'none' } } });
    assert.deepEqual(invalid, [0]);
    assert.equal(lb.chip.driver.irqArmed(0), false);
    assert.equal(lb.chip.driver.irqType(0), IrqType.NONE);
    for (const v of [0, 1, 0] as const) lb.lines.setInput(0, v);
    await settle(lb);
    assert.equal(lb.events.length, 1);
    assert.deepEqual(
      [lb.device.snapshot()[0].irqType, lb.device.snapshot()[0].armed, lb.device.snapshot()[0].latched],
      [IrqType.NONE, false, false],
    );
    await lb.chip.close();
  });

  test('re-enable while the handler still runs: one buffer, queued when the handler is done', async () => {
    const lb = await withInput('rising');
    const h = gate();
    lb.req.setEdgeHandler(() => h.promise);
    lb.lines.setInput(0, 1);
    await settle(lb);
    await lb.req.reconfigure({ lines: { 0: { direction: 'input', edge: 'none' } } });
    await lb.req.reconfigure({ lines: { 0: { direction: 'input', edge: 'rising' } } });
    await settle(lb);
    assert.equal(lb.device.snapshot()[0].armed, false, 'still masked: the handler runs');
    h.open();
    await settle(lb);
    assert.equal(lb.device.snapshot()[0].armed, true);
    assert.equal(lb.device.snapshot()[0].counters.invalid, 0, 'never a second buffer');
    await lb.chip.close();
  });

  test('level types through the driver: fires while active, again after the ack if still active', async () => {
    const lb = await openLoopbackChip({ lines: 2 });
    const d = lb.chip.driver;
    await d.setDirection(1, Direction.IN);
    let calls = 0;
    const hold = [gate(), gate()];
    await d.enableIrq(1, IrqType.LEVEL_LOW, () => hold[calls++]?.promise);
    await settle(lb);
    assert.equal(calls, 1, 'low at enable: fires at once');
    hold[0].open();
    await settle(lb);
    assert.equal(calls, 2, 'still low after the ack: fires again');
    lb.lines.setInput(1, 1); // source cleared while the second is handled
    hold[1].open();
    await settle(lb);
    assert.equal(calls, 2);
    assert.equal(d.irqArmed(1), true);
    await lb.chip.close();
  });
});

describe('disable races (bugs found by these tests)', () => {
  test('an edge between "mark disabled" and the NONE reply is dropped quietly, not a violation', async () => {
    const lb = await withInput('rising');
    const violations: string[] = [];
    lb.chip.driver.on('violation', (m) => violations.push(m));
    const disabling = lb.chip.driver.disableIrq(0);
    lb.lines.setInput(0, 1); // the device still has the type: VALID, legitimately
    await disabling;
    await settle(lb);
    assert.equal(lb.device.snapshot()[0].counters.delivered, 1);
    assert.deepEqual(violations, []);
    assert.deepEqual(lb.events, [], 'the handler does not run for a disabled line');
    await lb.chip.close();
  });

  test('driver.setDirection(NONE) on an enabled line disables it: one INVALID, no re-queue storm', async () => {
    const lb = await withInput('both');
    const handBacks: number[] = [];
    lb.device.on('irq', (_line, status) => {
      handBacks.push(status);
      if (handBacks.length > 50) void lb.chip.close(); // would otherwise spin in microtasks forever
    });
    await lb.chip.driver.setDirection(0, Direction.NONE);
    await settle(lb);
    assert.deepEqual(handBacks, [IrqStatus.INVALID]);
    assert.equal(lb.chip.driver.irqType(0), IrqType.NONE);
    assert.equal(lb.chip.driver.irqArmed(0), false);
    // Enabling again really sends the type (the driver does not think it is still on).
    const spy = spyRequests(lb);
    await lb.chip.driver.enableIrq(0, IrqType.EDGE_BOTH, () => {});
    assert.deepEqual(spy.forLine(0), [[SET_IRQ_TYPE, IrqType.EDGE_BOTH]]);
    await settle(lb);
    assert.equal(lb.device.snapshot()[0].armed, true);
    await lb.chip.close();
  });

  test('a line reset behind the driver (device-side SET_DIRECTION NONE): reported, no storm', async () => {
    const lb = await withInput('both');
    const violations: string[] = [];
    lb.chip.driver.on('violation', (m) => violations.push(m));
    let handBacks = 0;
    lb.device.on('irq', () => {
      if (++handBacks > 50) void lb.chip.close();
    });
    lb.device.handle({ type: SET_DIRECTION, gpio: 0, value: Direction.NONE });
    await settle(lb);
    assert.equal(handBacks, 1);
    assert.deepEqual(violations, ['line 0: eventq buffer returned INVALID while enabled']);
    await lb.chip.close();
  });
});
