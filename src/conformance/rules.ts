import {
  Direction,
  Feature,
  IrqStatus,
  IrqType,
  MessageType,
  Status,
  irqTypeName,
  messageTypeName,
} from '../protocol/constants.ts';
import { decodeNames } from '../protocol/names.ts';
import type { Completion, Probe, RequestShape } from './probe.ts';
import { within } from './probe.ts';
import { fail, skip, warn, type Rule, type RuleContext } from './rule.ts';

const S = (n: string) => `virtio 1.2 §5.18.${n}`;
const UNSET = 0xaa;
const LINE = 0;

interface Reply {
  status: number;
  value: number;
  len: number;
}

/** Sends a request and checks what every response must satisfy: it comes back, fully written. */
async function call(
  ctx: RuleContext,
  p: Probe,
  type: number,
  gpio: number,
  value: number,
  shape?: RequestShape,
): Promise<Reply> {
  const what = `${messageTypeName(type)}(gpio=${gpio}, value=${value})`;
  const c = await within(p.request(type, gpio, value, shape), ctx.replyMs);
  if (!c) return fail(`${what}: no reply within ${ctx.replyMs} ms`);
  return checkReply(what, c, 2);
}

function checkReply(what: string, c: Completion, size: number): Reply {
  if (c.len !== size)
    fail(`${what}: used length ${c.len}, expected ${size} (the whole response must be written)`);
  const status = c.data[0];
  if (status !== Status.OK && status !== Status.ERR) fail(`${what}: status byte 0x${status.toString(16)}`);
  if (size === 2 && c.data[1] === UNSET) fail(`${what}: value byte left unwritten`);
  return { status, value: c.data[1], len: c.len };
}

async function ok(
  ctx: RuleContext,
  p: Probe,
  type: number,
  gpio: number,
  value = 0,
  shape?: RequestShape,
): Promise<number> {
  const r = await call(ctx, p, type, gpio, value, shape);
  if (r.status !== Status.OK) fail(`${messageTypeName(type)}(gpio=${gpio}, value=${value}) answered ERR`);
  return r.value;
}

async function err(ctx: RuleContext, p: Probe, type: number, gpio: number, value: number): Promise<void> {
  const r = await call(ctx, p, type, gpio, value);
  if (r.status !== Status.ERR)
    fail(`${messageTypeName(type)}(gpio=${gpio}, value=${value}) answered OK, must be ERR`);
}

const input = (ctx: RuleContext, p: Probe, line = LINE) =>
  ok(ctx, p, MessageType.SET_DIRECTION, line, Direction.IN);

async function enable(ctx: RuleContext, p: Probe, type: IrqType, line = LINE): Promise<void> {
  const r = await call(ctx, p, MessageType.SET_IRQ_TYPE, line, type);
  if (r.status !== Status.OK) skip(`device refuses ${irqTypeName(type)} (allowed)`);
}

async function drive(ctx: RuleContext, line: number, value: 0 | 1): Promise<void> {
  await ctx.drive?.set(line, value);
  await new Promise((r) => setTimeout(r, 20));
}

/** A fresh driver with LINE held at `level` from outside, made an input, its interrupt enabled. */
async function armedLine(ctx: RuleContext, type: IrqType, level: 0 | 1): Promise<Probe> {
  const p = await ctx.open();
  await drive(ctx, LINE, level);
  await input(ctx, p);
  await enable(ctx, p, type);
  return p;
}

/** The eventq buffer must come back with this status within the wait. */
async function expectReturn(
  ctx: RuleContext,
  buf: Promise<Completion>,
  status: IrqStatus,
  what: string,
): Promise<Completion> {
  const c = await within(buf, ctx.replyMs);
  if (!c) return fail(`${what}: buffer not returned within ${ctx.replyMs} ms`);
  if (c.len !== 1) fail(`${what}: eventq used length ${c.len}, must be 1`);
  if (c.data[0] !== status)
    fail(
      `${what}: returned ${c.data[0] === IrqStatus.VALID ? 'VALID' : c.data[0] === IrqStatus.INVALID ? 'INVALID' : `0x${c.data[0].toString(16)}`}, expected ${status === IrqStatus.VALID ? 'VALID' : 'INVALID'}`,
    );
  return c;
}

/** The buffer must not come back VALID during the quiet window; returns it if it came back at all. */
async function expectNoInterrupt(
  ctx: RuleContext,
  buf: Promise<Completion>,
  what: string,
): Promise<Completion | null> {
  const c = await within(buf, ctx.quietMs);
  if (c && c.data[0] === IrqStatus.VALID) fail(`${what}: VALID interrupt`);
  return c;
}

export const rules: Rule[] = [
  {
    id: 'config.fields',
    clause: S('4 config; device normative'),
    strength: 'MUST',
    title: 'config space: ngpio set, padding zero',
    async run(ctx) {
      const p = await ctx.open();
      if (p.padding !== 0) fail(`padding is 0x${p.padding.toString(16)}, must be 0`);
      return `ngpio=${p.ngpio} gpio_names_size=${p.namesSize}`;
    },
  },
  {
    id: 'names.block',
    clause: S('6.1 Get Line Names; device normative'),
    strength: 'MUST',
    title: 'GET_LINE_NAMES: 1+N bytes, ngpio NUL-terminated unique names',
    async run(ctx) {
      const p = await ctx.open();
      if (p.namesSize === 0) return 'device has no names (gpio_names_size 0)';
      const c = await within(
        p.request(MessageType.GET_LINE_NAMES, 0, 0, { writable: [1 + p.namesSize] }),
        ctx.replyMs,
      );
      if (!c) return fail('no reply');
      if (c.data[0] !== Status.OK) fail('answered ERR although gpio_names_size > 0');
      if (c.len !== 1 + p.namesSize) fail(`used length ${c.len}, expected ${1 + p.namesSize}`);
      const names = decodeNames(c.data.subarray(1, c.len), p.ngpio);
      if (!names) return fail(`names block is not ${p.ngpio} NUL-terminated 7-bit ASCII strings`);
      const named = names.filter((n) => n !== '');
      if (new Set(named).size !== named.length) fail('names are not unique');
      return `${named.length} of ${p.ngpio} lines named`;
    },
  },
  {
    id: 'response.fields',
    clause: S('6 requestq; device normative'),
    strength: 'MUST',
    title: 'every response field written, used length 2',
    async run(ctx) {
      const p = await ctx.open();
      for (let line = 0; line < Math.min(p.ngpio, 8); line++) {
        const r = await call(ctx, p, MessageType.GET_DIRECTION, line, 0);
        if (r.status === Status.OK && r.value > Direction.IN) fail(`GET_DIRECTION(${line}) value ${r.value}`);
      }
      return `GET_DIRECTION on ${Math.min(p.ngpio, 8)} lines`;
    },
  },
  {
    id: 'gpio.range',
    clause: S('6 requestq: 0 <= gpio < ngpio'),
    strength: 'MUST',
    title: 'gpio >= ngpio answered ERR',
    async run(ctx) {
      const p = await ctx.open();
      await err(ctx, p, MessageType.GET_DIRECTION, p.ngpio, 0);
      await err(ctx, p, MessageType.SET_DIRECTION, p.ngpio, Direction.IN);
      await err(ctx, p, MessageType.GET_VALUE, p.ngpio, 0);
      await err(ctx, p, MessageType.SET_VALUE, p.ngpio, 1);
      await err(ctx, p, MessageType.GET_DIRECTION, 0xffff, 0);
      if (p.has(Feature.GPIO_F_IRQ))
        await err(ctx, p, MessageType.SET_IRQ_TYPE, p.ngpio, IrqType.EDGE_RISING);
      return `gpio=${p.ngpio} and 0xffff`;
    },
  },
  {
    id: 'type.unknown',
    clause: S('6 requestq: status ERR on failure'),
    strength: 'MUST',
    title: 'unknown message type answered ERR',
    async run(ctx) {
      const p = await ctx.open();
      await err(ctx, p, 0x0000, LINE, 0);
      await err(ctx, p, 0x007f, LINE, 0);
      await err(ctx, p, 0xffff, LINE, 0);
      return 'types 0x0000, 0x007f, 0xffff';
    },
  },
  {
    id: 'value.range',
    clause: S('6.3/6.5/6.6 message values'),
    strength: 'MUST',
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
  },
  {
    id: 'layout.split',
    clause: 'virtio 1.2 §2.6.4 message framing',
    strength: 'MUST',
    title: 'request over 3 descriptors, response over 2',
    async run(ctx) {
      const p = await ctx.open({ indirect: false });
      await ok(ctx, p, MessageType.SET_VALUE, LINE, 1, { split: [2, 2, 4], writable: [1, 1] });
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT, { split: [3, 5] });
      const v = await ok(ctx, p, MessageType.GET_VALUE, LINE, 0, { split: [2, 2, 4], writable: [1, 1] });
      if (v !== 1) fail(`GET_VALUE read ${v} after SET_VALUE 1 + OUT`);
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      return 'split [2,2,4] + [1,1] and [3,5] + [2]';
    },
  },
  {
    id: 'layout.bytewise',
    clause: 'virtio 1.2 §2.6.4 message framing',
    strength: 'MUST',
    title: 'request as 8 one-byte descriptors',
    async run(ctx) {
      const p = await ctx.open({ indirect: false });
      const r = await call(ctx, p, MessageType.GET_DIRECTION, LINE, 0, {
        split: [1, 1, 1, 1, 1, 1, 1, 1],
        writable: [1, 1],
      });
      if (r.status !== Status.OK) fail('GET_DIRECTION over 8+2 one-byte descriptors answered ERR');
      return `direction ${r.value}`;
    },
  },
  {
    id: 'layout.indirect',
    clause: 'virtio 1.2 §2.7.5.3 indirect descriptors',
    strength: 'MUST',
    title: 'request through an indirect table',
    needs: ['indirect'],
    async run(ctx) {
      const p = await ctx.open();
      await ok(ctx, p, MessageType.GET_DIRECTION, LINE, 0, { indirect: true });
      await ok(ctx, p, MessageType.GET_DIRECTION, LINE, 0, {
        indirect: true,
        split: [2, 6],
        writable: [1, 1],
      });
      return 'plain and split chains in indirect tables';
    },
  },
  {
    id: 'set-value.before-out',
    clause: S('6.5 Set Value'),
    strength: 'MUST',
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
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      return 'values 1 and 0';
    },
  },
  {
    id: 'set-value.on-output',
    clause: S('6.5 Set Value, 6.4 Get Value'),
    strength: 'MUST',
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
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      return '1, 0, 1 read back';
    },
  },
  {
    id: 'set-direction.out-first',
    clause: S('6.3 Set Direction (driver should set the value first)'),
    strength: 'INFO',
    title: 'OUT before any SET_VALUE: accepting or refusing are both allowed',
    async run(ctx) {
      const p = await ctx.open();
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      const r = await call(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
      const what =
        r.status === Status.OK
          ? `accepted, drives ${await ok(ctx, p, MessageType.GET_VALUE, LINE)}`
          : 'refused';
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      return what;
    },
  },
  {
    id: 'direction-none.reset',
    clause: S('6 device normative: discard line state at NONE'),
    strength: 'MUST',
    title: 'SET_DIRECTION NONE: direction reads NONE, interrupt disabled',
    async run(ctx) {
      const p = await ctx.open();
      await ok(ctx, p, MessageType.SET_VALUE, LINE, 1);
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      const d = await ok(ctx, p, MessageType.GET_DIRECTION, LINE);
      if (d !== Direction.NONE) fail(`GET_DIRECTION reads ${d} after NONE`);
      if (!p.has(Feature.GPIO_F_IRQ) || !ctx.drive) return 'direction NONE';
      await drive(ctx, LINE, 0);
      await input(ctx, p);
      await enable(ctx, p, IrqType.EDGE_RISING);
      const buf = p.eventBuffer(LINE);
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      await drive(ctx, LINE, 1);
      await expectNoInterrupt(ctx, buf, 'edge after SET_DIRECTION NONE');
      await drive(ctx, LINE, 0);
      return 'direction NONE; no interrupt after NONE';
    },
  },
  {
    id: 'order.same-line',
    clause: S('6 device normative: same line in order'),
    strength: 'MUST',
    title: 'requests for one line answered in arrival order',
    async run(ctx) {
      const p = await ctx.open();
      await ok(ctx, p, MessageType.SET_VALUE, LINE, 0);
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT);
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
      done.forEach((c, i) => {
        const [type, v] = sent[i];
        if (type === MessageType.GET_VALUE && c.data[1] !== v)
          fail(`GET_VALUE #${i} read ${c.data[1]}, expected ${v}`);
      });
      await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.NONE);
      return '16 interleaved SET_VALUE/GET_VALUE in flight at once';
    },
  },
  {
    id: 'irq.types',
    clause: S('6.6 Set IRQ Type'),
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
          await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
        }
      }
      return `accepts ${accepted.join(', ') || 'none'}`;
    },
  },
  {
    id: 'irq.unmask-disabled',
    clause: S('6.6 Set IRQ Type: unmasked without being enabled'),
    strength: 'SHOULD',
    title: 'buffer for a line with IRQs disabled comes back INVALID at once',
    needs: ['irq'],
    async run(ctx) {
      const p = await ctx.open();
      await input(ctx, p);
      const c = await within(p.eventBuffer(LINE), ctx.replyMs);
      if (!c) return warn(`buffer held for ${ctx.replyMs} ms instead of returned INVALID`);
      if (c.len !== 1) fail(`used length ${c.len}, must be 1`);
      if (c.data[0] === IrqStatus.VALID) fail('VALID for a line whose interrupt is not enabled');
      if (c.data[0] !== IrqStatus.INVALID) fail(`status 0x${c.data[0].toString(16)}`);
      return 'INVALID';
    },
  },
  {
    id: 'irq.disable-returns',
    clause: S('7 eventq device normative: return buffers on NONE'),
    strength: 'MUST',
    title: 'disable hands the armed buffer back INVALID promptly',
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
  },
  {
    id: 'irq.second-buffer',
    clause: S('7 eventq driver normative (driver MUST NOT; device behaviour undefined)'),
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
      await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
      const both = await within(Promise.all([a, b]), ctx.replyMs);
      if (!both) return fail('after disable, not every buffer came back (MUST return the buffers)');
      if (both.some((c) => c.data[0] !== IrqStatus.INVALID)) fail('a buffer came back VALID');
      return what;
    },
  },
  {
    id: 'irq.edge',
    clause: S('7 eventq: interrupt delivered when enabled and unmasked'),
    strength: 'MUST',
    title: 'rising edge on an armed line → VALID, used length 1',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
      const buf = p.eventBuffer(LINE);
      await expectNoInterrupt(ctx, buf, 'before any edge');
      await drive(ctx, LINE, 1);
      await expectReturn(ctx, buf, IrqStatus.VALID, 'rising edge');
      await drive(ctx, LINE, 0);
      return 'VALID';
    },
  },
  {
    id: 'irq.edge-filter',
    clause: S('7 eventq device normative: no interrupt unless one happened'),
    strength: 'MUST',
    title: 'EDGE_RISING ignores falling edges; EDGE_FALLING ignores rising ones',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_RISING, 1);
      let buf = p.eventBuffer(LINE);
      await drive(ctx, LINE, 0);
      await expectNoInterrupt(ctx, buf, 'falling edge with EDGE_RISING');
      await drive(ctx, LINE, 1);
      await expectReturn(ctx, buf, IrqStatus.VALID, 'rising edge with EDGE_RISING');
      await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
      await enable(ctx, p, IrqType.EDGE_FALLING);
      buf = p.eventBuffer(LINE);
      await drive(ctx, LINE, 0);
      await expectReturn(ctx, buf, IrqStatus.VALID, 'falling edge with EDGE_FALLING');
      buf = p.eventBuffer(LINE);
      await drive(ctx, LINE, 1);
      await expectNoInterrupt(ctx, buf, 'rising edge with EDGE_FALLING');
      await drive(ctx, LINE, 0);
      await expectReturn(ctx, buf, IrqStatus.VALID, 'second falling edge');
      return 'rising/falling filtered';
    },
  },
  {
    id: 'irq.edge-both',
    clause: S('6.6 EDGE_BOTH'),
    strength: 'MUST',
    title: 'EDGE_BOTH fires on rising and falling edges',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_BOTH, 0);
      await expectReturn(
        ctx,
        (await drive(ctx, LINE, 1), p.eventBuffer(LINE)),
        IrqStatus.VALID,
        'rising (latched)',
      );
      const buf = p.eventBuffer(LINE);
      await drive(ctx, LINE, 0);
      await expectReturn(ctx, buf, IrqStatus.VALID, 'falling');
      return 'both edges';
    },
  },
  {
    id: 'irq.edge-latched',
    clause: S('6 device normative: latch edges while masked'),
    strength: 'MUST',
    title: 'edge while enabled but masked is reported at unmask',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
      await drive(ctx, LINE, 1);
      await drive(ctx, LINE, 0);
      await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'unmask after a masked edge');
      return 'VALID at unmask';
    },
  },
  {
    id: 'irq.edge-coalesced',
    clause: S('7 eventq message flow (one latched interrupt)'),
    strength: 'SHOULD',
    title: 'several edges while masked are reported once',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
      for (let i = 0; i < 3; i++) {
        await drive(ctx, LINE, 1);
        await drive(ctx, LINE, 0);
      }
      await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'unmask after 3 masked edges');
      const again = await within(p.eventBuffer(LINE), ctx.quietMs);
      if (again?.data[0] === IrqStatus.VALID)
        warn('a second VALID for edges that happened in one masked period');
      return 'one VALID for 3 masked edges';
    },
  },
  {
    id: 'irq.latch-dropped',
    clause: S('6 device normative: discard latched interrupt at disable'),
    strength: 'MUST',
    title: 'disable drops a latched edge',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
      await drive(ctx, LINE, 1);
      await drive(ctx, LINE, 0);
      await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
      await enable(ctx, p, IrqType.EDGE_RISING);
      const buf = p.eventBuffer(LINE);
      await expectNoInterrupt(ctx, buf, 'unmask after disable dropped the latch');
      await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
      return 'no interrupt';
    },
  },
  {
    id: 'irq.level',
    clause: S('7 eventq message flow (level re-checked at unmask)'),
    strength: 'MUST',
    title: 'active level fires at unmask, and again while still active',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.LEVEL_HIGH, 1);
      await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'level high at unmask');
      await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'still high at the next unmask');
      await drive(ctx, LINE, 0);
      const buf = p.eventBuffer(LINE);
      await expectNoInterrupt(ctx, buf, 'level low with LEVEL_HIGH');
      await drive(ctx, LINE, 1);
      await expectReturn(ctx, buf, IrqStatus.VALID, 'level goes high while armed');
      await drive(ctx, LINE, 0);
      return 'fires while high, quiet while low';
    },
  },
  {
    id: 'irq.level-not-latched',
    clause: S('6 device normative: do not latch levels'),
    strength: 'MUST',
    title: 'a level that came and went while masked is not reported',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.LEVEL_HIGH, 0);
      await drive(ctx, LINE, 1);
      await drive(ctx, LINE, 0);
      const buf = p.eventBuffer(LINE);
      await expectNoInterrupt(ctx, buf, 'unmask after a masked high pulse');
      await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
      return 'no interrupt';
    },
  },
  {
    id: 'irq.no-valid-disabled',
    clause: S('7 eventq device normative: enabled and unmasked'),
    strength: 'MUST',
    title: 'no VALID after a disable completed',
    needs: ['irq', 'drive'],
    async run(ctx) {
      const p = await armedLine(ctx, IrqType.EDGE_BOTH, 0);
      const buf = p.eventBuffer(LINE);
      await ok(ctx, p, MessageType.SET_IRQ_TYPE, LINE, IrqType.NONE);
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
  },
  {
    id: 'event-idx',
    clause: 'virtio 1.2 §2.7.10 used buffer notification suppression',
    strength: 'MUST',
    title: 'EVENT_IDX: notify when used idx passes used_event (and not before: SHOULD)',
    needs: ['event-idx'],
    async run(ctx) {
      const p = await ctx.open({ irq: false });
      await ok(ctx, p, MessageType.GET_DIRECTION, LINE);
      const q = p.requestq;
      const before = p.interrupts[0];
      const base = q.collectedIndex;
      const target = (base + 3) & 0xffff;
      // Ask to be notified only when the 3rd of the next requests is used.
      q.setUsedEvent(base + 2);
      const done = [0, 1, 2].map(() => p.request(MessageType.GET_DIRECTION, LINE, 0));
      const start = Date.now();
      while (q.deviceUsedIndex !== target && p.interrupts[0] === before && Date.now() - start < ctx.replyMs)
        await new Promise((r) => setTimeout(r, 2));
      if (p.interrupts[0] !== before && q.collectedIndex !== target)
        warn('notified before used idx passed used_event');
      if (q.deviceUsedIndex !== target) fail('the device did not use the 3 requests');
      await new Promise((r) => setTimeout(r, 50));
      if (p.interrupts[0] === before) fail('no notification although used idx passed used_event');
      await within(Promise.all(done), ctx.replyMs);
      if (p.interrupts[0] - before > 1) warn(`${p.interrupts[0] - before} notifications for one used_event`);
      return 'one notification for three used buffers';
    },
  },
];
