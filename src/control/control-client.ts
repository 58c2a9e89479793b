import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import {
  CONTROL_PROTOCOL_VERSION,
  controlPathFor,
  isEventType,
  type ClockAction,
  type ClockState,
  type ControlEvent,
  type ControlReply,
  type ControlRequestInput,
  type DeviceStatus,
  type EncoderState,
  type EventType,
  type LevelName,
  type LineRef,
} from './control-protocol.ts';

/** A level as callers like to write it. */
export type LevelInput = 0 | 1 | boolean | LevelName;

export interface EventFilter {
  /** Only events of these lines (offsets or names); device-wide events always pass. */
  lines?: readonly LineRef[];
  types?: readonly EventType[];
}

/** The reply to a request that failed, as an Error with the protocol's code. */
export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const toBit = (v: LevelInput): 0 | 1 => (v === 1 || v === true || v === 'high' ? 1 : 0);
/** Most events an unread `events()` iterator keeps before it fails (a consumer that stopped reading). */
const MAX_QUEUED_EVENTS = 100_000;

/** What a watch began with: the device's state, and the daemon's clock (ns) at that moment. */
export interface WatchStart {
  status: DeviceStatus;
  timeNs: bigint;
}

interface Subscriber {
  push(e: ControlEvent): void;
  end(error: Error | null): void;
}

/**
 * A typed client of a running daemon's control endpoint (docs/control-protocol.md), addressed by
 * the device's socket path. One connection carries requests and, once `events()` or `waitFor()`
 * is first used, the device's event stream.
 */
export class ControlClient {
  private buf = '';
  private readonly waiting: Array<(r: ControlReply) => void> = [];
  private readonly subscribers = new Set<Subscriber>();
  private watching: Promise<WatchStart> | null = null;
  /** Line names and current levels, from the watch reply onwards. */
  private names: string[] = [];
  private readonly levels: Array<0 | 1> = [];
  private closedBy: Error | null = null;
  private closedByUs = false;
  private readonly closeListeners: Array<(e: Error | null) => void> = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.data(chunk));
    sock.on('error', () => {});
    sock.on('close', () => {
      const err = this.closedByUs ? null : new Error('the daemon closed the control connection');
      this.closedBy = err ?? new Error('the control client is closed');
      for (const w of this.waiting.splice(0)) w({ ok: false, code: 'failed', error: this.closedBy.message });
      for (const s of this.subscribers) s.end(err);
      this.subscribers.clear();
      for (const l of this.closeListeners.splice(0)) l(err);
    });
  }

  /** Connects to PATH.ctl (or `opts.controlPath`, a daemon started with --control). */
  static async connect(
    devicePath: string,
    opts: { timeoutMs?: number; controlPath?: string } = {},
  ): Promise<ControlClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const path = opts.controlPath ?? controlPathFor(devicePath);
    if (!existsSync(path))
      throw new Error(`no vgpio daemon serves ${devicePath} (control socket ${path} does not exist)`);
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`control socket ${path}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        const why =
          e.code === 'ECONNREFUSED'
            ? 'the daemon is not running (stale socket)'
            : e.code === 'EACCES'
              ? `permission denied on ${path} (the daemon's --socket-mode and group decide who may connect)`
              : e.message;
        reject(new Error(`cannot reach the vgpio daemon for ${devicePath}: ${why}`));
      });
    });
    return new ControlClient(sock);
  }

  private data(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = {
          ok: false,
          code: 'malformed',
          error: `malformed reply from the daemon: ${line.slice(0, 80)}`,
        };
      }
      if (typeof msg !== 'object' || msg === null) continue;
      if ('event' in msg) {
        if (isControlEvent(msg)) this.event(msg);
      } else if (isControlReply(msg)) {
        this.waiting.shift()?.(msg);
      }
    }
  }

  private event(e: ControlEvent): void {
    if ((e.event === 'output' || e.event === 'input') && e.line !== undefined && e.to)
      this.levels[e.line] = e.to === 'high' ? 1 : 0;
    for (const s of this.subscribers) s.push(e);
  }

  /** Sends one request and resolves with its reply (replies come in request order). */
  request(req: ControlRequestInput): Promise<ControlReply> {
    if (this.closedBy) return Promise.resolve({ ok: false, code: 'failed', error: this.closedBy.message });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(JSON.stringify(req) + '\n');
    });
  }

  private async ok(req: ControlRequestInput): Promise<ControlReply & { ok: true }> {
    const r = await this.request(req);
    if (!r.ok) throw new ControlError(r.code, r.error);
    return r;
  }

  /** The daemon's control protocol version; throws if this client does not speak it. */
  async hello(): Promise<number> {
    const r = await this.ok({ op: 'hello' });
    if (r.protocol !== CONTROL_PROTOCOL_VERSION)
      throw new Error(
        `the daemon speaks control protocol ${r.protocol}, this client ${CONTROL_PROTOCOL_VERSION}`,
      );
    return r.protocol;
  }

  async status(): Promise<DeviceStatus> {
    const r = await this.ok({ op: 'status' });
    if (!r.status) throw new Error('the daemon sent no status');
    return r.status;
  }

  /** The level the guest senses on an input line. */
  async setInput(line: LineRef, level: LevelInput): Promise<void> {
    await this.ok({ op: 'input', line, value: toBit(level) });
  }

  /** Drives the opposite level for widthMs, then back; resolves when done. */
  async pulse(line: LineRef, widthMs = 1): Promise<void> {
    await this.ok({ op: 'pulse', line, widthMs });
  }

  /** A board button on the line (docs/control-protocol.md §2): press, release, or click (resolves once released). */
  async button(line: LineRef, action: 'press' | 'release' | 'click', holdMs?: number): Promise<void> {
    await this.ok(action === 'click' ? { op: action, line, holdMs } : { op: action, line });
  }

  /**
   * The board clock driving the line (docs/control-protocol.md §2): starts or stops it, or with no
   * action only reads it. Resolves with its state after the action.
   */
  async clock(line: LineRef, action?: ClockAction): Promise<ClockState> {
    const r = await this.ok(action === undefined ? { op: 'clock', line } : { op: 'clock', line, action });
    const p = r.peripheral;
    if (p?.type !== 'clock') throw new Error('the daemon sent no clock state');
    return p;
  }

  /**
   * The board encoder on the line (either of its lines): moves it to `position` and resolves once it
   * is there (one quadrature step per stepMs), or only reads it when `position` is left out.
   */
  async encoder(line: LineRef, position?: number): Promise<EncoderState> {
    const r = await this.ok(
      position === undefined ? { op: 'encoder', line } : { op: 'encoder', line, position },
    );
    const p = r.peripheral;
    if (p?.type !== 'encoder') throw new Error('the daemon sent no encoder state');
    return p;
  }

  /** The level the guest drives on an output line (an error if it is not an output). */
  async getOutput(line: LineRef): Promise<0 | 1> {
    const r = await this.ok({ op: 'output', line });
    if (r.value !== 0 && r.value !== 1) throw new Error('the daemon sent no value');
    return r.value;
  }

  /**
   * Starts the event stream on this connection (once; later calls share it) and resolves with the
   * device's state and the daemon's clock when it began: every later event is newer than both.
   */
  startWatch(): Promise<WatchStart> {
    this.watching ??= this.ok({ op: 'watch' }).then((r) => {
      if (!r.status || r.timeNs === undefined || !/^\d+$/.test(r.timeNs))
        throw new Error('the daemon sent no status and time with the watch reply');
      this.names = r.status.lines.map((l) => l.name);
      r.status.lines.forEach((l) => {
        // Events that arrived before this reply was processed are newer: keep them.
        this.levels[l.line] ??= l.level === 'high' ? 1 : 0;
      });
      return { status: r.status, timeNs: BigInt(r.timeNs) };
    });
    return this.watching;
  }

  /**
   * Calls `listener` for every event from now on (no filter); resolves with the stream's start
   * (see startWatch). The returned `stop` removes the listener.
   */
  async subscribe(
    listener: (e: ControlEvent) => void,
    onEnd?: (error: Error | null) => void,
  ): Promise<WatchStart & { stop: () => void }> {
    if (this.closedBy) throw this.closedBy;
    const sub: Subscriber = { push: listener, end: (error) => onEnd?.(error) };
    this.subscribers.add(sub);
    try {
      const start = await this.startWatch();
      return { ...start, stop: () => this.subscribers.delete(sub) };
    } catch (e) {
      this.subscribers.delete(sub);
      throw e;
    }
  }

  private lineIndex(ref: LineRef): number {
    if (typeof ref === 'number') return ref;
    if (/^\d+$/.test(ref)) return Number(ref);
    const i = this.names.indexOf(ref);
    if (i < 0) throw new ControlError('no-line', `no line named ${JSON.stringify(ref)}`);
    return i;
  }

  /**
   * The device's events from this call on (they queue until read), optionally filtered. Ends
   * when `close()` is called or the loop breaks (`return()`); throws when the daemon goes away.
   */
  events(filter: EventFilter = {}): AsyncIterableIterator<ControlEvent> {
    const queue: ControlEvent[] = [];
    let wake: (() => void) | null = null;
    let ended: { error: Error | null } | null = null;
    let done = false;
    const sub: Subscriber = {
      push: (e) => {
        if (queue.length >= MAX_QUEUED_EVENTS) {
          ended = { error: new Error(`more than ${MAX_QUEUED_EVENTS} events not read: stream stopped`) };
          this.subscribers.delete(sub);
        } else queue.push(e);
        wake?.();
      },
      end: (error) => {
        ended = { error };
        wake?.();
      },
    };
    if (this.closedBy) ended = { error: this.closedBy };
    else this.subscribers.add(sub);
    const started = this.startWatch().then(() => ({
      lines: filter.lines ? new Set(filter.lines.map((l) => this.lineIndex(l))) : null,
      types: filter.types ? new Set(filter.types) : null,
    }));
    started.catch(() => {}); // reported by next()
    const finish = (): IteratorResult<ControlEvent> => {
      done = true;
      this.subscribers.delete(sub);
      return { done: true, value: undefined };
    };
    const it: AsyncIterableIterator<ControlEvent> = {
      next: async () => {
        if (done) return { done: true, value: undefined };
        let f: Awaited<typeof started>;
        try {
          f = await started;
        } catch (e) {
          finish();
          throw e;
        }
        for (;;) {
          let e: ControlEvent | undefined;
          while ((e = queue.shift()) !== undefined) {
            if (f.types && !f.types.has(e.event)) continue;
            if (f.lines && e.line !== undefined && !f.lines.has(e.line)) continue;
            return { done: false, value: e };
          }
          const end: { error: Error | null } | null = ended;
          if (end) {
            finish();
            if (end.error) throw end.error;
            return { done: true, value: undefined };
          }
          if (done) return { done: true, value: undefined };
          await new Promise<void>((r) => (wake = r));
          wake = null;
        }
      },
      return: async () => {
        const r = finish();
        wake?.();
        return r;
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Resolves when `line` is at `level` (at once if it already is); rejects after timeoutMs. */
  async waitFor(line: LineRef, level: LevelInput, opts: { timeoutMs?: number } = {}): Promise<void> {
    const want = toBit(level);
    const timeoutMs = opts.timeoutMs ?? 5000;
    await this.startWatch();
    const n = this.lineIndex(line);
    if (this.levels[n] === undefined)
      throw new ControlError('no-line', `no line ${n} (device has ${this.names.length} lines)`);
    if (this.levels[n] === want) return;
    await new Promise<void>((resolve, reject) => {
      const sub: Subscriber = {
        push: (e) => {
          if (
            e.line === n &&
            (e.event === 'output' || e.event === 'input') &&
            e.to === (want ? 'high' : 'low')
          )
            done(null);
        },
        end: (error) => done(error ?? new Error('the control client was closed')),
      };
      const t = setTimeout(
        () =>
          done(
            new Error(`line ${JSON.stringify(line)} did not go ${want ? 'high' : 'low'} in ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
      const done = (err: Error | null): void => {
        clearTimeout(t);
        this.subscribers.delete(sub);
        if (err) reject(err);
        else resolve();
      };
      this.subscribers.add(sub);
    });
  }

  /** Called once when the connection ends: null if by close(), else why. */
  onClose(listener: (error: Error | null) => void): void {
    if (this.closedBy) listener(this.closedByUs ? null : this.closedBy);
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.closedByUs = true;
    this.sock.destroy();
  }
}

/** Checks the shape of a reply line (never cast blindly). */
function isControlReply(v: object): v is ControlReply {
  const o = v as Record<string, unknown>;
  return o.ok === true || (o.ok === false && typeof o.error === 'string' && typeof o.code === 'string');
}

/** Checks the shape of an event line from the daemon (never cast blindly). */
function isControlEvent(v: object): v is ControlEvent {
  const o = v as Record<string, unknown>;
  return (
    isEventType(o.event) &&
    typeof o.timeNs === 'string' &&
    (o.line === undefined || typeof o.line === 'number')
  );
}
