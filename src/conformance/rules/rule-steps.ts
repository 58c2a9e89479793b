// The steps rules are written with: one request and the checks every reply must pass, arming a
// line, driving an input, and waiting for an eventq buffer to come back (or not).
import {
  Direction,
  IrqStatus,
  MessageType,
  Status,
  IrqType,
  irqTypeName,
  messageTypeName,
} from '../../protocol/constants.ts';
import type { Completion, Probe, RequestShape } from '../probe.ts';
import { within } from '../probe.ts';
import { fail, failMust, skip, warn, type RuleContext } from '../rule.ts';

/** A section of virtio 1.2 §5.18 (GPIO Device). */
export const S = (n: string) => `virtio 1.2 §5.18.${n}`;

/** The fill of writable bytes, to see which ones the device left unwritten. */
const UNSET = 0xaa;
/** The line every rule works on. */
export const LINE = 0;

const ALL_FIELDS = 'virtio 1.2 §5.18.6.9: "MUST set all the fields of the struct virtio_gpio_response"';
const USED_LEN = 'virtio 1.2 §2.7.8.2: "MUST write at least len bytes"';

export interface Reply {
  status: number;
  value: number;
  len: number;
}

/**
 * Used length against the bytes the device had to write. More than it wrote is a MUST broken; less
 * is allowed by the ring ("len is permitted to be an underestimate") but Linux's gpio-virtio
 * treats any other length as a failed request.
 */
export function checkUsedLength(what: string, len: number, size: number): void {
  if (len > size) failMust(`${what}: used length ${len}, but only ${size} bytes are written`, USED_LEN);
  if (len < size)
    warn(
      `${what}: used length ${len}, expected ${size} (an underestimate is allowed by virtio 1.2 ` +
        `§2.7.8.2; Linux's gpio-virtio rejects it)`,
    );
}

/** What every requestq reply must satisfy: status OK or ERR, the value byte written, its length. */
export function checkReply(what: string, c: Completion, size: number): Reply {
  const status = c.data[0];
  if (status !== Status.OK && status !== Status.ERR)
    failMust(`${what}: status byte 0x${status.toString(16)}`, ALL_FIELDS);
  if (size === 2 && c.data[1] === UNSET) failMust(`${what}: value byte left unwritten`, ALL_FIELDS);
  checkUsedLength(what, c.len, size);
  return { status, value: c.data[1], len: c.len };
}

/** Sends a request and waits for its reply (which must come), checked by checkReply. */
export async function call(
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

/** A request that has to succeed; resolves to the reply's value byte. */
export async function ok(
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

/** A request that has to be refused. */
export async function err(
  ctx: RuleContext,
  p: Probe,
  type: number,
  gpio: number,
  value: number,
): Promise<void> {
  const r = await call(ctx, p, type, gpio, value);
  if (r.status !== Status.ERR)
    fail(`${messageTypeName(type)}(gpio=${gpio}, value=${value}) answered OK, must be ERR`);
}

export const input = (ctx: RuleContext, p: Probe, line = LINE) =>
  ok(ctx, p, MessageType.SET_DIRECTION, line, Direction.IN);

/** SET_DIRECTION NONE: the line is released (and its state discarded). */
export const release = (ctx: RuleContext, p: Probe, line = LINE) =>
  ok(ctx, p, MessageType.SET_DIRECTION, line, Direction.NONE);

/** SET_IRQ_TYPE NONE: the interrupt is disabled. */
export const disable = (ctx: RuleContext, p: Probe, line = LINE) =>
  ok(ctx, p, MessageType.SET_IRQ_TYPE, line, IrqType.NONE);

/** Enables the interrupt; a device that refuses the type makes the rule SKIP (types are its choice). */
export async function enable(ctx: RuleContext, p: Probe, type: IrqType, line = LINE): Promise<void> {
  const r = await call(ctx, p, MessageType.SET_IRQ_TYPE, line, type);
  if (r.status !== Status.OK) skip(`device refuses ${irqTypeName(type)} (allowed)`);
}

/** Sets the level the device senses, then gives it a moment to see the change. */
export async function drive(ctx: RuleContext, line: number, value: 0 | 1): Promise<void> {
  await ctx.drive?.set(line, value);
  await new Promise((r) => setTimeout(r, 20));
}

/** A fresh driver with LINE held at `level` from outside, made an input, its interrupt enabled. */
export async function armedLine(ctx: RuleContext, type: IrqType, level: 0 | 1): Promise<Probe> {
  const p = await ctx.open();
  await drive(ctx, LINE, level);
  await input(ctx, p);
  await enable(ctx, p, type);
  return p;
}

const irqStatusName = (s: number) =>
  s === IrqStatus.VALID ? 'VALID' : s === IrqStatus.INVALID ? 'INVALID' : `0x${s.toString(16)}`;

/** The eventq buffer must come back with this status within the wait. */
export async function expectReturn(
  ctx: RuleContext,
  buf: Promise<Completion>,
  status: IrqStatus,
  what: string,
): Promise<Completion> {
  const c = await within(buf, ctx.replyMs);
  if (!c) return fail(`${what}: buffer not returned within ${ctx.replyMs} ms`);
  if (c.data[0] !== status)
    fail(`${what}: returned ${irqStatusName(c.data[0])}, expected ${irqStatusName(status)}`);
  checkUsedLength(`${what}: eventq buffer`, c.len, 1);
  return c;
}

/** The buffer must not come back VALID during the quiet window; returns it if it came back at all. */
export async function expectNoInterrupt(
  ctx: RuleContext,
  buf: Promise<Completion>,
  what: string,
): Promise<Completion | null> {
  const c = await within(buf, ctx.quietMs);
  if (c && c.data[0] === IrqStatus.VALID) fail(`${what}: VALID interrupt`);
  return c;
}
