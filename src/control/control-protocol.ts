// The control protocol, version 1 (docs/control-protocol.md): newline-delimited JSON over a Unix
// socket beside the device socket. Requests are decoded field by field here; nothing is cast.
import type { DeviceEvent, DirectionName, EdgeName } from '../device/device-events.ts';
import type { LineCounters } from '../device/line-state.ts';

export const CONTROL_PROTOCOL_VERSION = 1;
/** Longest request line the server reads (bytes before the newline). */
export const MAX_REQUEST_BYTES = 65536;

/** Control endpoint of a running daemon: beside the device socket. */
export const controlPathFor = (socketPath: string): string => `${socketPath}.ctl`;

/** A line is addressed by offset or by name (a string of digits is an offset). */
export type LineRef = number | string;
export type LevelName = 'high' | 'low';

/** Every event type a `watch` can stream (docs/control-protocol.md §4). */
export const EVENT_TYPES = [
  'output',
  'input',
  'direction',
  'irq-type',
  'armed',
  'latched',
  'coalesced',
  'delivered',
  'invalid',
  'dropped',
  'connected',
  'disconnected',
  'features',
  'chip-gone',
] as const satisfies readonly DeviceEvent['type'][];
export type EventType = (typeof EVENT_TYPES)[number];

export type ControlRequest =
  | { op: 'hello' }
  | { op: 'status' }
  | { op: 'input'; line: LineRef; value: 0 | 1 }
  | { op: 'pulse'; line: LineRef; widthMs: number }
  | { op: 'output'; line: LineRef }
  | { op: 'watch'; lines: LineRef[] | null; types: EventType[] | null }
  | { op: 'press' | 'release'; line: LineRef }
  | { op: 'click'; line: LineRef; holdMs: number }
  | { op: 'clock'; line: LineRef; action: ClockAction | null }
  | { op: 'encoder'; line: LineRef; position: number | null };

/** A request as sent: optional fields may be left out, `id` is echoed in the reply. */
export type ControlRequestInput = (
  | { op: 'hello' }
  | { op: 'status' }
  | { op: 'input'; line: LineRef; value: 0 | 1 }
  | { op: 'pulse'; line: LineRef; widthMs?: number }
  | { op: 'output'; line: LineRef }
  | { op: 'watch'; lines?: LineRef[]; types?: EventType[] }
  | { op: 'press' | 'release'; line: LineRef }
  | { op: 'click'; line: LineRef; holdMs?: number }
  | { op: 'clock'; line: LineRef; action?: ClockAction }
  | { op: 'encoder'; line: LineRef; position?: number }
) & { id?: number | string };

export type ClockAction = 'start' | 'stop';
export const CLOCK_ACTIONS: readonly ClockAction[] = ['start', 'stop'];
/** Encoder positions the `encoder` op takes (a signed 32-bit range). */
export const ENCODER_POSITION_MIN = -0x80000000;
export const ENCODER_POSITION_MAX = 0x7fffffff;

/**
 * A board peripheral as a control client sees it (docs/control-protocol.md §2, §3): its name, which
 * of its lines this is (`role`), and its state.
 */
export type PeripheralState = { name: string; role: string } & (
  | { type: 'button'; pressed: boolean }
  | { type: 'clock'; running: boolean; periodMs: number; duty: number }
  | {
      type: 'encoder';
      /** Where the encoder is now, and where its move goes (equal once it has arrived). */
      position: number;
      target: number;
      a: 0 | 1;
      b: 0 | 1;
    }
);
export type ButtonState = Extract<PeripheralState, { type: 'button' }>;
export type ClockState = Extract<PeripheralState, { type: 'clock' }>;
export type EncoderState = Extract<PeripheralState, { type: 'encoder' }>;

export interface LineStatus {
  line: number;
  name: string;
  direction: DirectionName;
  /** Sensed level (the driven level for outputs). */
  level: LevelName;
  edge: EdgeName;
  /** The guest's eventq buffer is held: the line is unmasked. */
  armed: boolean;
  /** An edge is pending until the guest re-arms. */
  latched: boolean;
  counters: LineCounters;
  /** On a board: what drives the line (a wire, a net, a peripheral); it cannot be set by hand. */
  drivenBy?: string;
  /** On a board: a `button` sits on the line (ops press / release / click). */
  button?: true;
  /** On a board: the button, clock or encoder on the line, with its state. */
  peripheral?: PeripheralState;
}

export interface DeviceStatus {
  socket: string;
  /** The daemon's process id. */
  pid: number;
  connected: boolean;
  /** Features the front-end acknowledged (hex), or null before SET_FEATURES. */
  features: string | null;
  irqNegotiated: boolean;
  /** A host chip device (vgpio serve --chip): the chip, and 'gone' once it stopped answering. */
  chip?: { path: string; state: 'open' | 'gone' };
  /**
   * Exact counts of what front-ends did (the log limits repeated lines; these never skip one):
   * connections accepted, messages received, requests refused, connections dropped for breaking
   * the protocol, and rings found malformed.
   */
  frontend?: {
    connections: number;
    messages: number;
    refused: number;
    dropped: number;
    malformedQueues: number;
  };
  ngpio: number;
  lines: LineStatus[];
}

export type ErrorCode = 'malformed' | 'bad-field' | 'unknown-op' | 'no-line' | 'not-output' | 'failed';

export type ControlReply = (
  | {
      ok: true;
      /** hello */
      protocol?: number;
      pid?: number;
      /** status, and watch (the state when the stream began) */
      status?: DeviceStatus;
      /** output */
      value?: 0 | 1;
      /** watch: the daemon's clock when the stream began */
      timeNs?: string;
      /** press, release, click, clock, encoder: the peripheral's state after the op */
      peripheral?: PeripheralState;
    }
  | { ok: false; code: ErrorCode; error: string }
) & { id?: number | string };

/** An event as streamed to watchers: a DeviceEvent with names for levels and a string timestamp. */
export type ControlEvent = {
  event: EventType;
  timeNs: string;
  line?: number;
  name?: string;
  from?: LevelName;
  to?: LevelName;
  direction?: DirectionName;
  edge?: EdgeName;
  held?: boolean;
  reason?: string;
  features?: string;
  irq?: boolean;
};

export const levelOf = (l: 0 | 1): LevelName => (l === 1 ? 'high' : 'low');

/** The wire form of a device event. */
export function encodeEvent(e: DeviceEvent): ControlEvent {
  const out: ControlEvent = { event: e.type, timeNs: e.timeNs.toString() };
  if ('line' in e) {
    out.line = e.line;
    out.name = e.name;
  }
  switch (e.type) {
    case 'output':
    case 'input':
      out.from = levelOf(e.from);
      out.to = levelOf(e.to);
      break;
    case 'direction':
      out.direction = e.direction;
      break;
    case 'irq-type':
      out.edge = e.edge;
      break;
    case 'invalid':
      out.held = e.held;
      break;
    case 'disconnected':
    case 'chip-gone':
      out.reason = e.reason;
      break;
    case 'features':
      out.features = e.features;
      out.irq = e.irq;
      break;
    default:
      break;
  }
  return out;
}

/** A request that failed to decode: the reply to send. */
export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request's `id`, when it was readable: the refusal echoes it. */
    readonly id?: number | string,
  ) {
    super(message);
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is { [k: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (v === undefined ? 'missing' : JSON.stringify(v));

const ALLOWED: Record<ControlRequest['op'], readonly string[]> = {
  hello: [],
  status: [],
  input: ['line', 'value'],
  pulse: ['line', 'widthMs'],
  output: ['line'],
  watch: ['lines', 'types'],
  press: ['line'],
  release: ['line'],
  click: ['line', 'holdMs'],
  clock: ['line', 'action'],
  encoder: ['line', 'position'],
};

const isOp = (v: string): v is ControlRequest['op'] => Object.hasOwn(ALLOWED, v);
export const isEventType = (v: unknown): v is EventType =>
  typeof v === 'string' && EVENT_TYPES.some((t) => t === v);

function lineRef(v: Json | undefined, field: string): LineRef {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && v !== '') return /^\d+$/.test(v) ? Number(v) : v;
  throw new RequestError(
    'bad-field',
    `"${field}" must be a line offset (integer ≥ 0) or a line name, not ${show(v)}`,
  );
}

/** Decodes one request line; throws RequestError naming the field at fault. */
export function decodeRequest(text: string): { id?: number | string; req: ControlRequest } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RequestError('malformed', `not JSON: ${(e as Error).message}`);
  }
  if (!isObject(parsed))
    throw new RequestError('malformed', `a request is a JSON object, not ${show(parsed)}`);
  const { id } = parsed;
  if (id !== undefined && typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id)))
    throw new RequestError('bad-field', `"id" must be a number or a string, not ${show(id)}`);
  try {
    return decodeFields(parsed, id);
  } catch (e) {
    if (e instanceof RequestError && id !== undefined) throw new RequestError(e.code, e.message, id);
    throw e;
  }
}

function decodeFields(
  parsed: { [k: string]: Json },
  id: number | string | undefined,
): { id?: number | string; req: ControlRequest } {
  const { op } = parsed;
  const withId = id === undefined ? {} : { id };
  if (typeof op !== 'string') throw new RequestError('bad-field', `"op" must be a string, not ${show(op)}`);
  if (!isOp(op)) throw new RequestError('unknown-op', `unknown op ${JSON.stringify(op)}`);
  const known = op;
  for (const k of Object.keys(parsed))
    if (k !== 'op' && k !== 'id' && !ALLOWED[known].includes(k))
      throw new RequestError('bad-field', `unknown field "${k}" for op "${op}"`);
  switch (known) {
    case 'hello':
    case 'status':
      return { ...withId, req: { op: known } };
    case 'output':
    case 'press':
    case 'release':
      return { ...withId, req: { op: known, line: lineRef(parsed.line, 'line') } };
    case 'click': {
      const h = parsed.holdMs ?? 50;
      if (typeof h !== 'number' || !Number.isFinite(h) || h < 0 || h > 60_000)
        throw new RequestError('bad-field', `"holdMs" must be a number of ms in 0..60000, not ${show(h)}`);
      return { ...withId, req: { op: known, line: lineRef(parsed.line, 'line'), holdMs: h } };
    }
    case 'clock': {
      const line = lineRef(parsed.line, 'line');
      const a = parsed.action;
      if (a === undefined || a === null) return { ...withId, req: { op: known, line, action: null } };
      const action = CLOCK_ACTIONS.find((c) => c === a);
      if (!action)
        throw new RequestError(
          'bad-field',
          `"action" must be "start" or "stop" (or left out), not ${show(a)}`,
        );
      return { ...withId, req: { op: known, line, action } };
    }
    case 'encoder': {
      const line = lineRef(parsed.line, 'line');
      const p = parsed.position;
      if (p === undefined || p === null) return { ...withId, req: { op: known, line, position: null } };
      if (
        typeof p !== 'number' ||
        !Number.isInteger(p) ||
        p < ENCODER_POSITION_MIN ||
        p > ENCODER_POSITION_MAX
      )
        throw new RequestError(
          'bad-field',
          `"position" must be an integer in ${ENCODER_POSITION_MIN}..${ENCODER_POSITION_MAX} (or left out), not ${show(p)}`,
        );
      return { ...withId, req: { op: known, line, position: p } };
    }
    case 'input': {
      const line = lineRef(parsed.line, 'line');
      const v = parsed.value;
      if (v !== 0 && v !== 1) throw new RequestError('bad-field', `"value" must be 0 or 1, not ${show(v)}`);
      return { ...withId, req: { op: known, line, value: v } };
    }
    case 'pulse': {
      const line = lineRef(parsed.line, 'line');
      const w = parsed.widthMs ?? 1;
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > 60_000)
        throw new RequestError('bad-field', `"widthMs" must be a number of ms in 0..60000, not ${show(w)}`);
      return { ...withId, req: { op: known, line, widthMs: w } };
    }
    case 'watch': {
      const { lines, types } = parsed;
      if (lines !== undefined && lines !== null && !Array.isArray(lines))
        throw new RequestError('bad-field', `"lines" must be an array of lines, not ${show(lines)}`);
      if (types !== undefined && types !== null && !Array.isArray(types))
        throw new RequestError('bad-field', `"types" must be an array of event types, not ${show(types)}`);
      const refs = lines ? lines.map((l, i) => lineRef(l, `lines[${i}]`)) : null;
      const ts = types
        ? types.map((t, i) => {
            if (!isEventType(t))
              throw new RequestError(
                'bad-field',
                `"types[${i}]" must be one of ${EVENT_TYPES.join(', ')}, not ${show(t)}`,
              );
            return t;
          })
        : null;
      return { ...withId, req: { op: known, lines: refs, types: ts } };
    }
  }
}
