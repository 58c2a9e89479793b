// requestq messages: response fields, argument checks, directions and values, ordering
// (virtio 1.2 §5.18.6).
import { Direction, Feature, IrqType, MessageType, Status } from '../../protocol/constants.ts';
import type { Completion } from '../probe.ts';
import { within } from '../probe.ts';
import { fail, warn, type Rule } from '../rule.ts';
import { LINE, S, call, drive, enable, err, expectNoInterrupt, input, ok, release } from './rule-steps.ts';

/** Where "ERR on failure" is written: the message flow, in lowercase, outside the normative lists. */
const ERR_ON_FAILURE = '"status must be set to ... ERR on failure" (message flow: descriptive)';

export const responseFields: Rule = {
  id: 'response.fields',
  clause: S('6.9'),
  quote: '"MUST set all the fields of the struct virtio_gpio_response"',
  strength: 'MUST',
  title: 'every response field written, used length 2',
  async run(ctx) {
    const p = await ctx.open();
    for (let line = 0; line < Math.min(p.ngpio, 8); line++) {
      const r = await call(ctx, p, MessageType.GET_DIRECTION, line, 0);
      if (r.status === Status.OK && r.value > Direction.IN)
        warn(`GET_DIRECTION(${line}) value ${r.value} is none of 0 (none), 1 (output), 2 (input)`);
    }
    return `GET_DIRECTION on ${Math.min(p.ngpio, 8)} lines`;
  },
};

export const gpioRange: Rule = {
  id: 'gpio.range',
  clause: S('6.7'),
  quote: `gpio is "0 <= gpio < ngpio"; ${ERR_ON_FAILURE}`,
  strength: 'SHOULD',
  title: 'gpio >= ngpio answered ERR',
  async run(ctx) {
    const p = await ctx.open();
    await err(ctx, p, MessageType.GET_DIRECTION, p.ngpio, 0);
    await err(ctx, p, MessageType.SET_DIRECTION, p.ngpio, Direction.IN);
    await err(ctx, p, MessageType.GET_VALUE, p.ngpio, 0);
    await err(ctx, p, MessageType.SET_VALUE, p.ngpio, 1);
    await err(ctx, p, MessageType.GET_DIRECTION, 0xffff, 0);
    if (p.has(Feature.GPIO_F_IRQ)) await err(ctx, p, MessageType.SET_IRQ_TYPE, p.ngpio, IrqType.EDGE_RISING);
    return `gpio=${p.ngpio} and 0xffff`;
  },
};

export const typeUnknown: Rule = {
  id: 'type.unknown',
  clause: S('6.7'),
  quote: ERR_ON_FAILURE,
  strength: 'SHOULD',
  title: 'unknown message type answered ERR',
  async run(ctx) {
    const p = await ctx.open();
    await err(ctx, p, 0x0000, LINE, 0);
    await err(ctx, p, 0x007f, LINE, 0);
    await err(ctx, p, 0xffff, LINE, 0);
    return 'types 0x0000, 0x007f, 0xffff';
  },
};

export const valueRange: Rule = {
  id: 'value.range',
  clause: S('6.3, 6.5, 6.6'),
  quote: 'values the driver sends ("one of VIRTIO_GPIO_IRQ_TYPE_*"); no device MUST for others',
  strength: 'SHOULD',
  title: 'out-of-range direction, value and IRQ type answered ERR',
  async run(ctx) {
    const p = await ctx.open();
    await err(ctx, p, MessageType.SET_DIRECTION, LINE, 3);
    await err(ctx, p, MessageType.SET_VALUE, LINE, 2);
    if (p.has(Feature.GPIO_F_IRQ)) {
      await input(ctx, p);
      await err(ctx, p, MessageType.SET_IRQ_TYPE, LINE, 0x10);
      await err(ctx, p, MessageType.SET_IRQ_TYPE, LINE, 0x05);
    }
    return p.has(Feature.GPIO_F_IRQ)
      ? 'direction 3, value 2, IRQ types 0x10 and 0x05'
      : 'direction 3, value 2';
  },
};

export const setValueBeforeOut: Rule = {
  id: 'set-value.before-out',
  clause: S('6.5'),
  quote: '"this output value must be used by the device" (descriptive, no MUST)',
  strength: 'SHOULD',
  title: 'SET_VALUE before OUT is used when the line becomes an output',
  async run(ctx) {
    const p = await ctx.open();
    for (const v of [1, 0] as const) {
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.IN);
      await ok(ctx, p, MessageType.SET_VALUE, LINE, v);
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
      const got = await ok(ctx, p, MessageType.GET_VALUE, LINE);
      if (got !== v) fail(`SET_VALUE ${v}, then OUT: GET_VALUE reads ${got}`);
    }
    await release(ctx, p);
    return 'values 1 and 0';
  },
};

export const setValueOnOutput: Rule = {
  id: 'set-value.on-output',
  clause: S('6.4, 6.5'),
  quote: 'GET_VALUE returns the "current value sensed on a line" (reading an output back: no MUST)',
  strength: 'SHOULD',
  title: 'SET_VALUE on an output drives it',
  async run(ctx) {
    const p = await ctx.open();
    await ok(ctx, p, MessageType.SET_VALUE, LINE, 0);
    await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
    for (const v of [1, 0, 1] as const) {
      await ok(ctx, p, MessageType.SET_VALUE, LINE, v);
      const got = await ok(ctx, p, MessageType.GET_VALUE, LINE);
      if (got !== v) fail(`SET_VALUE ${v} on an output: GET_VALUE reads ${got}`);
    }
    await release(ctx, p);
    return '1, 0, 1 read back';
  },
};

export const setDirectionOutFirst: Rule = {
  id: 'set-direction.out-first',
  clause: S('6.3'),
  quote: '"The driver should set the value ... before setting the direction ... to output"',
  strength: 'INFO',
  title: 'OUT before any SET_VALUE: accepting or refusing are both allowed',
  async run(ctx) {
    const p = await ctx.open();
    await release(ctx, p);
    const r = await call(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
    const what =
      r.status === Status.OK
        ? `accepted, drives ${await ok(ctx, p, MessageType.GET_VALUE, LINE)}`
        : 'refused';
    await release(ctx, p);
    return what;
  },
};

export const directionNoneReset: Rule = {
  id: 'direction-none.reset',
  clause: S('6.9'),
  quote: '"MUST discard all state information ... [at] VIRTIO_GPIO_DIRECTION_NONE"',
  strength: 'MUST',
  title: 'SET_DIRECTION NONE: direction reads NONE, interrupt disabled',
  async run(ctx) {
    const p = await ctx.open();
    await ok(ctx, p, MessageType.SET_VALUE, LINE, 1);
    await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
    await release(ctx, p);
    const d = await ok(ctx, p, MessageType.GET_DIRECTION, LINE);
    if (d !== Direction.NONE) fail(`GET_DIRECTION reads ${d} after NONE`);
    if (!p.has(Feature.GPIO_F_IRQ) || !ctx.drive) return 'direction NONE';
    await drive(ctx, LINE, 0);
    await input(ctx, p);
    await enable(ctx, p, IrqType.EDGE_RISING);
    const buf = p.eventBuffer(LINE);
    await release(ctx, p);
    await drive(ctx, LINE, 1);
    await expectNoInterrupt(ctx, buf, 'edge after SET_DIRECTION NONE');
    await drive(ctx, LINE, 0);
    return 'direction NONE; no interrupt after NONE';
  },
};

export const orderSameLine: Rule = {
  id: 'order.same-line',
  clause: S('6.9'),
  quote: '"MUST process multiple messages, for the same GPIO line, sequentially and respond ... in order"',
  strength: 'MUST',
  title: 'requests for one line answered in arrival order',
  async run(ctx) {
    const p = await ctx.open();
    await ok(ctx, p, MessageType.SET_VALUE, LINE, 0);
    await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
    // The values read show the processing order only if the device reads its outputs back
    // (set-value.on-output, a SHOULD); otherwise only the completion order is checked.
    await ok(ctx, p, MessageType.SET_VALUE, LINE, 1);
    const readsBack = (await ok(ctx, p, MessageType.GET_VALUE, LINE)) === 1;
    const sent: Array<[number, number, Promise<Completion>]> = [];
    for (let i = 0; i < 8; i++) {
      const v = i % 2;
      sent.push([MessageType.SET_VALUE, v, p.request(MessageType.SET_VALUE, LINE, v)]);
      sent.push([MessageType.GET_VALUE, v, p.request(MessageType.GET_VALUE, LINE, 0)]);
    }
    const done = await within(Promise.all(sent.map((s) => s[2])), ctx.replyMs);
    if (!done) return fail('not all 16 requests answered');
    for (let i = 1; i < done.length; i++)
      if (done[i].order < done[i - 1].order) fail(`request ${i} completed before request ${i - 1}`);
    if (readsBack)
      done.forEach((c, i) => {
        const [type, v] = sent[i];
        if (type === MessageType.GET_VALUE && c.data[1] !== v)
          fail(`GET_VALUE #${i} read ${c.data[1]}, expected ${v}`);
      });
    await release(ctx, p);
    return `16 interleaved SET_VALUE/GET_VALUE in flight at once${readsBack ? '' : ' (completion order only)'}`;
  },
};
