// The eventq buffer as the mask: enabling, unmasking, disabling (virtio 1.2 §5.18.6.6, §5.18.7).
import { IrqStatus, IrqType, MessageType, Status, irqTypeName } from '../../protocol/constants.ts';
import { within } from '../probe.ts';
import { fail, failMust, warn, type Rule } from '../rule.ts';
import {
  LINE,
  S,
  armedLine,
  call,
  checkReply,
  checkUsedLength,
  disable,
  drive,
  enable,
  expectNoInterrupt,
  expectReturn,
  input,
  ok,
} from './rule-steps.ts';

const NOT_UNLESS_BOTH =
  'virtio 1.2 §5.18.7.3: "MUST NOT send an interrupt event ... unless ... both unmasked and enabled"';

export const irqTypes: Rule = {
  id: 'irq.types',
  clause: S('6.6'),
  quote: 'which trigger types a device supports is its choice',
  strength: 'INFO',
  title: 'which trigger types the device accepts (ERR is allowed)',
  needs: ['irq'],
  async run(ctx) {
    const p = await ctx.open();
    await input(ctx, p);
    const accepted: string[] = [];
    for (const t of [
      IrqType.EDGE_RISING,
      IrqType.EDGE_FALLING,
      IrqType.EDGE_BOTH,
      IrqType.LEVEL_HIGH,
      IrqType.LEVEL_LOW,
    ]) {
      const r = await call(ctx, p, MessageType.SET_IRQ_TYPE, LINE, t);
      if (r.status === Status.OK) {
        accepted.push(irqTypeName(t));
        await disable(ctx, p);
      }
    }
    return `accepts ${accepted.join(', ') || 'none'}`;
  },
};

export const irqUnmaskDisabled: Rule = {
  id: 'irq.unmask-disabled',
  clause: S('6.6'),
  quote: '"unmasked without being enabled first, the device should return any unused pair of buffers"',
  strength: 'SHOULD',
  title: 'buffer for a line with IRQs disabled comes back INVALID at once',
  needs: ['irq'],
  async run(ctx) {
    const p = await ctx.open();
    await input(ctx, p);
    const c = await within(p.eventBuffer(LINE), ctx.replyMs);
    if (!c) return warn(`buffer held for ${ctx.replyMs} ms instead of returned INVALID`);
    if (c.data[0] === IrqStatus.VALID)
      failMust('VALID for a line whose interrupt is not enabled', NOT_UNLESS_BOTH);
    if (c.data[0] !== IrqStatus.INVALID) fail(`status 0x${c.data[0].toString(16)}`);
    checkUsedLength('eventq buffer', c.len, 1);
    return 'INVALID';
  },
};

export const irqDisableReturns: Rule = {
  id: 'irq.disable-returns',
  clause: S('7.3'),
  quote: 'on SET_IRQ_TYPE NONE "the device MUST return the buffers ... [with] INVALID"',
  strength: 'MUST',
  title: 'disable hands the armed buffer back INVALID',
  needs: ['irq'],
  async run(ctx) {
    const p = await ctx.open();
    await input(ctx, p);
    await enable(ctx, p, IrqType.EDGE_RISING);
    const buf = p.eventBuffer(LINE);
    if (await within(buf, ctx.quietMs)) fail('buffer returned before anything happened');
    const reply = p.request(MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
    const c = await expectReturn(ctx, buf, IrqStatus.INVALID, 'after SET_IRQ_TYPE NONE');
    const r = await within(reply, ctx.replyMs);
    if (!r) return fail('SET_IRQ_TYPE NONE not answered');
    checkReply('SET_IRQ_TYPE NONE', r, 2);
    return c.atNs <= r.atNs
      ? 'INVALID, returned before the NONE reply'
      : 'INVALID, returned after the NONE reply';
  },
};

export const irqSecondBuffer: Rule = {
  id: 'irq.second-buffer',
  clause: S('7.2'),
  quote: '"The driver MUST NOT add multiple pairs of buffers for the same GPIO line": device undefined',
  strength: 'INFO',
  title: 'a second buffer for one line: device survives, all buffers returned on disable',
  needs: ['irq'],
  async run(ctx) {
    const p = await ctx.open();
    await input(ctx, p);
    await enable(ctx, p, IrqType.EDGE_RISING);
    const a = p.eventBuffer(LINE);
    const b = p.eventBuffer(LINE);
    const early = await within(Promise.race([a, b]), ctx.quietMs);
    const what = early
      ? `one returned at once (${early.data[0] === IrqStatus.INVALID ? 'INVALID' : 'VALID'})`
      : 'both held';
    if (early?.data[0] === IrqStatus.VALID) fail('VALID with no edge');
    await ok(ctx, p, MessageType.GET_DIRECTION, LINE);
    await disable(ctx, p);
    const both = await within(Promise.all([a, b]), ctx.replyMs);
    if (!both) return fail('after disable, not every buffer came back');
    if (both.some((c) => c.data[0] !== IrqStatus.INVALID)) fail('a buffer came back VALID');
    return what;
  },
};

export const irqNoValidDisabled: Rule = {
  id: 'irq.no-valid-disabled',
  clause: S('7.3'),
  quote: '"MUST NOT send an interrupt event ... unless ... both unmasked and enabled"',
  strength: 'MUST',
  title: 'no VALID after a disable completed',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_BOTH, 0);
    const buf = p.eventBuffer(LINE);
    await disable(ctx, p);
    await drive(ctx, LINE, 1);
    await drive(ctx, LINE, 0);
    const c = await within(buf, ctx.replyMs);
    if (c?.data[0] === IrqStatus.VALID) fail('VALID after the interrupt was disabled');
    const again = p.eventBuffer(LINE);
    await drive(ctx, LINE, 1);
    await expectNoInterrupt(ctx, again, 'buffer queued while disabled');
    await drive(ctx, LINE, 0);
    return 'none';
  },
};
