// GpioDriver's bulk API over the loopback: send() (callback form, no promise per request),
// flush(), and the getValues/setValues batches: what reaches the device, in how many kicks,
// the per-line order (protocol.md R4), errors, a full ring, and a closed driver.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openLoopbackChip } from '../../src/compose/loopback-chip.ts';
import { GpioRequestError, type ReplyHandler } from '../../src/driver/gpio-driver.ts';
import { GpioLineError } from '../../src/driver/gpio-line-error.ts';
import { Direction, MessageType } from '../../src/protocol/constants.ts';
import { settle, spyRequests } from './helpers.ts';

const { GET_VALUE, SET_VALUE, GET_DIRECTION } = MessageType;

interface Reply {
  error: Error | null;
  value: number;
  tag: number;
}

/** A handler that records every reply, and a promise for the n-th one. */
function recorder() {
  const replies: Reply[] = [];
  const waiters: Array<[number, () => void]> = [];
  const handler: ReplyHandler = (error, value, tag) => {
    replies.push({ error, value, tag });
    for (const [n, w] of waiters) if (replies.length >= n) w();
  };
  const count = (n: number) => new Promise<void>((r) => (replies.length >= n ? r() : waiters.push([n, r])));
  return { replies, handler, count };
}

async function inputs(n: number) {
  const lb = await openLoopbackChip({ lines: n });
  for (let l = 0; l < n; l++) {
    await lb.chip.driver.setDirection(l, Direction.IN);
    lb.lines.setInput(l, (l % 3 === 0 ? 1 : 0) as 0 | 1);
  }
  await settle(lb);
  return lb;
}

describe('GpioDriver.send', () => {
  test('replies carry the value and the tag; requests sent together reach the device in one kick', async () => {
    const lb = await inputs(8);
    const spy = spyRequests(lb);
    const r = recorder();
    for (let l = 0; l < 8; l++) lb.chip.driver.send(GET_VALUE, l, 0, r.handler, 100 + l);
    lb.chip.driver.flush();
    await r.count(8);
    assert.equal(spy.batches.length, 1, 'one kick for the eight');
    assert.deepEqual(
      spy.batches[0].map((q) => q.gpio),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.deepEqual(
      r.replies.map((x) => [x.error, x.value, x.tag]),
      [0, 1, 2, 3, 4, 5, 6, 7].map((l) => [null, l % 3 === 0 ? 1 : 0, 100 + l]),
    );
    await lb.chip.close();
  });

  test('without flush() the requests of one turn still go out in one kick', async () => {
    const lb = await inputs(4);
    const spy = spyRequests(lb);
    const r = recorder();
    for (let l = 0; l < 4; l++) lb.chip.driver.send(GET_DIRECTION, l, 0, r.handler, l);
    await r.count(4);
    assert.equal(spy.batches.length, 1);
    assert.deepEqual(
      r.replies.map((x) => x.value),
      [Direction.IN, Direction.IN, Direction.IN, Direction.IN],
    );
    await lb.chip.close();
  });

  test('one line: one request at a time, in the order sent (R4); each reply releases the next', async () => {
    const lb = await inputs(2);
    const spy = spyRequests(lb);
    const r = recorder();
    const d = lb.chip.driver;
    await d.setDirection(1, Direction.OUT);
    spy.requests.length = 0;
    spy.batches.length = 0;
    for (let i = 0; i < 5; i++) d.send(SET_VALUE, 1, i & 1, r.handler, i);
    d.send(GET_VALUE, 0, 0, r.handler, 99);
    d.flush();
    await r.count(6);
    // Line 1's five requests went one per kick; line 0's went with the first.
    assert.deepEqual(
      spy.batches.map((b) => b.map((q) => `${q.gpio}:${q.value}`)),
      [['1:0', '0:0'], ['1:1'], ['1:0'], ['1:1'], ['1:0']],
    );
    assert.deepEqual(
      r.replies.filter((x) => x.tag !== 99).map((x) => x.tag),
      [0, 1, 2, 3, 4],
    );
    assert.equal(lb.lines.output(1), 0);
    await lb.chip.close();
  });

  test('requests sent from a handler go out together once the batch of replies is handled', async () => {
    const lb = await inputs(8);
    const spy = spyRequests(lb);
    const d = lb.chip.driver;
    let left = 8 * 5;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const handler: ReplyHandler = (error, _value, l) => {
      assert.equal(error, null);
      if (--left === 0) done();
      else if (left >= 8) d.send(GET_VALUE, l, 0, handler, l);
    };
    for (let l = 0; l < 8; l++) d.send(GET_VALUE, l, 0, handler, l);
    d.flush();
    await finished;
    assert.deepEqual(
      spy.batches.map((b) => b.length),
      [8, 8, 8, 8, 8],
      'each round of eight replies sent the next eight in one kick',
    );
    await lb.chip.close();
  });

  test('ERR from the device is a GpioRequestError; the next request still goes', async () => {
    const lb = await inputs(2);
    const r = recorder();
    const d = lb.chip.driver;
    d.send(SET_VALUE, 0, 7, r.handler, 1); // value 7 is not a level: ERR
    d.send(GET_VALUE, 5, 0, r.handler, 2); // no line 5: ERR
    d.send(GET_VALUE, 0, 0, r.handler, 3);
    d.flush();
    await r.count(3);
    const byTag = new Map(r.replies.map((x) => [x.tag, x]));
    for (const tag of [1, 2]) {
      const e = byTag.get(tag)?.error;
      assert.ok(e instanceof GpioRequestError, `tag ${tag}: ${String(e)}`);
    }
    assert.equal((byTag.get(2)?.error as GpioRequestError).gpio, 5);
    assert.deepEqual([byTag.get(3)?.error, byTag.get(3)?.value], [null, 1]);
    await lb.chip.close();
  });

  test('more requests than the ring holds: every one is answered, each line in order', async () => {
    // 4 descriptors: two chains at a time for 8 lines, three requests each.
    const lb = await openLoopbackChip({ lines: 8, driver: { queueSize: 4 } });
    const d = lb.chip.driver;
    for (let l = 0; l < 8; l++) await d.setDirection(l, Direction.OUT);
    const r = recorder();
    for (let i = 0; i < 3; i++)
      for (let l = 0; l < 8; l++) d.send(SET_VALUE, l, (i + l) & 1, r.handler, l * 10 + i);
    d.flush();
    await r.count(24);
    assert.ok(r.replies.every((x) => x.error === null));
    for (let l = 0; l < 8; l++)
      assert.deepEqual(
        r.replies.filter((x) => Math.floor(x.tag / 10) === l).map((x) => x.tag % 10),
        [0, 1, 2],
        `line ${l}`,
      );
    for (let l = 0; l < 8; l++) assert.equal(lb.lines.output(l), (2 + l) & 1);
    await lb.chip.close();
  });

  test('after close: the handler gets EBADF at once', async () => {
    const lb = await inputs(1);
    await lb.chip.close();
    const r = recorder();
    lb.chip.driver.send(GET_VALUE, 0, 0, r.handler, 4);
    assert.equal(r.replies.length, 1);
    const e = r.replies[0].error;
    assert.ok(e instanceof GpioLineError && e.code === 'EBADF', String(e));
  });
});

describe('GpioDriver.getValues / setValues', () => {
  test('getValues: one batch, one kick, the levels in the order asked (a line may repeat)', async () => {
    const lb = await inputs(6);
    const spy = spyRequests(lb);
    const d = lb.chip.driver;
    assert.deepEqual(await d.getValues([5, 0, 3, 1]), [0, 1, 1, 0]);
    assert.equal(spy.batches.length, 1);
    assert.deepEqual(
      spy.batches[0].map((q) => q.gpio),
      [5, 0, 3, 1],
    );
    assert.deepEqual(await d.getValues([]), []);
    // A repeated line is read twice, the second after the first reply (R4).
    spy.batches.length = 0;
    assert.deepEqual(await d.getValues([2, 2, 3]), [0, 0, 1]);
    assert.deepEqual(
      spy.batches.map((b) => b.map((q) => q.gpio)),
      [[2, 3], [2]],
    );
    await lb.chip.close();
  });

  test('setValues: one batch; an ERR rejects the batch with GpioRequestError', async () => {
    const lb = await openLoopbackChip({ lines: 4 });
    const d = lb.chip.driver;
    for (let l = 0; l < 4; l++) await d.setDirection(l, Direction.OUT);
    await settle(lb);
    const spy = spyRequests(lb);
    await d.setValues([0, 1, 2, 3], [1, 0, 1, 1]);
    assert.deepEqual(
      [0, 1, 2, 3].map((l) => lb.lines.output(l)),
      [1, 0, 1, 1],
    );
    assert.equal(spy.batches.length, 1);
    await assert.rejects(d.setValues([0, 9], [0, 1]), GpioRequestError);
    await assert.rejects(d.setValues([0, 1], [0]), RangeError);
    await lb.chip.close();
  });

  test('LineRequest.getValues/setValues go as one batch; a line not an output refuses before sending', async () => {
    const lb = await openLoopbackChip({ lines: 4 });
    lb.lines.setInput(3, 1);
    const req = await lb.chip.requestLines({
      lines: {
        0: { direction: 'output' },
        1: { direction: 'output' },
        2: { direction: 'output' },
        3: { direction: 'input' },
      },
    });
    await settle(lb);
    const spy = spyRequests(lb);
    await req.setValues({ 0: 1, 1: 1, 2: 0 });
    assert.deepEqual(
      spy.batches.map((b) => b.map((q) => [q.type, q.gpio, q.value])),
      [
        [
          [SET_VALUE, 0, 1],
          [SET_VALUE, 1, 1],
          [SET_VALUE, 2, 0],
        ],
      ],
    );
    assert.equal(req.settingsOf(1).outputValue, 1);
    assert.deepEqual(await req.getValues([0, 1, 2, 3]), [1, 1, 0, 1]);
    assert.equal(spy.batches.length, 2);
    spy.requests.length = 0;
    await assert.rejects(
      req.setValues({ 0: 0, 3: 1 }),
      (e: unknown) => e instanceof GpioLineError && e.code === 'EPERM',
    );
    await assert.rejects(
      req.getValues([0, 7]),
      (e: unknown) => e instanceof GpioLineError && e.code === 'EINVAL',
    );
    assert.deepEqual(spy.requests, [], 'nothing sent for a refused batch');
    await lb.chip.close();
  });
});
