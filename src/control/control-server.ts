import { createServer, type Server, type Socket } from 'node:net';
import { BoardLines, type LinePeripheral } from '../board/board-lines.ts';
import type { DeviceEvent } from '../device/device-events.ts';
import { directionNameOf, edgeNameOf } from '../device/device-events.ts';
import type { GpioDevice } from '../device/gpio-device.ts';
import type { SimulatedLines } from '../device/simulated-lines.ts';
import type { Logger } from '../log/logger.ts';
import { bindSocketFile, listenError, removeStaleSocket } from '../transports/socket-file.ts';
import {
  CONTROL_PROTOCOL_VERSION,
  MAX_REQUEST_BYTES,
  RequestError,
  decodeRequest,
  encodeEvent,
  levelOf,
  type ControlReply,
  type ControlRequest,
  type DeviceStatus,
  type EventType,
  type LineRef,
  type LineStatus,
  type PeripheralState,
} from './control-protocol.ts';

export interface ControlTarget<T> {
  device: GpioDevice<T>;
  /** The simulated wires to drive; null for a host chip's lines, which its hardware drives. */
  lines: SimulatedLines | null;
  status(): Omit<DeviceStatus, 'lines' | 'ngpio'>;
}

/** A watcher whose unsent events pass this many bytes is too slow: its connection is ended. */
const WATCHER_BACKLOG_BYTES = 4 << 20;

interface Watch {
  lines: Set<number> | null;
  types: Set<EventType> | null;
  pending: string;
}

/** A device's lines with names, not codes (docs/control-protocol.md §3). */
export function lineStatuses<T>(device: GpioDevice<T>): LineStatus[] {
  return device.snapshot().map((l) => ({
    line: l.line,
    name: l.name,
    direction: directionNameOf(l.direction),
    level: levelOf(l.value),
    edge: edgeNameOf(l.irqType),
    armed: l.armed,
    latched: l.latched,
    counters: l.counters,
  }));
}

/** The status reply (docs/control-protocol.md §3). */
export function deviceStatus<T>(target: ControlTarget<T>): DeviceStatus {
  const lines = lineStatuses(target.device);
  const board = target.lines;
  if (board instanceof BoardLines)
    for (const l of lines) {
      const by = board.driverOf(l.line);
      if (by !== undefined) l.drivenBy = by;
      const p = board.peripheralOn(l.line);
      if (p) l.peripheral = peripheralState(p);
      if (p?.peripheral.type === 'button') l.button = true;
    }
  return { ...target.status(), ngpio: target.device.ngpio, lines };
}

/** What a control client sees of a board peripheral on a line (docs/control-protocol.md §2). */
export function peripheralState(entry: LinePeripheral): PeripheralState {
  const { name, role, peripheral: p } = entry;
  switch (p.type) {
    case 'button':
      return { name, role, type: p.type, pressed: p.pressed };
    case 'clock':
      return { name, role, type: p.type, running: p.running, periodMs: p.periodMs, duty: p.duty };
    case 'encoder':
      return { name, role, type: p.type, position: p.position, target: p.targetPosition, ...p.levels };
  }
}

type Operable = LinePeripheral['peripheral'];
type OperableOf<K extends Operable['type']> = Extract<Operable, { type: K }>;
const isOf = <K extends Operable['type']>(p: Operable, type: K): p is OperableOf<K> => p.type === type;

/**
 * Serves a device's control endpoint (docs/control-protocol.md): drive inputs, read outputs,
 * status, and the device's event stream. It subscribes to the stream only while someone watches.
 */
export class ControlServer<T> {
  private readonly server: Server;
  private readonly watchers = new Map<Socket, Watch>();
  /** Every open connection: closing the server ends them (server.close waits for them otherwise). */
  private readonly clients = new Set<Socket>();
  private unsubscribe: (() => void) | null = null;
  private flushScheduled = false;

  private constructor(
    readonly path: string,
    readonly target: ControlTarget<T>,
    private readonly log: Logger,
  ) {
    this.server = createServer((sock) => this.client(sock));
  }

  static async listen<T>(
    path: string,
    target: ControlTarget<T>,
    log: Logger,
    mode = 0o600,
    /** A socket already listening at `path` (bound by the caller: a worker thread cannot set the umask). */
    listenFd?: number,
  ): Promise<ControlServer<T>> {
    const c = new ControlServer(path, target, log);
    const listening = new Promise<void>((resolve, reject) => {
      c.server.once('error', (e) => reject(listenError(path, e)));
      c.server.once('listening', () => resolve());
    });
    if (listenFd !== undefined) c.server.listen({ fd: listenFd });
    else bindSocketFile(path, mode, () => c.server.listen(path));
    await listening;
    return c;
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const c of this.clients) c.destroy();
    this.watchers.clear();
    await new Promise<void>((r) => this.server.close(() => r()));
    try {
      removeStaleSocket(this.path);
    } catch {
      // gone already
    }
  }

  private client(sock: Socket): void {
    let buf = '';
    // Requests are answered in order, one at a time (a pulse replies when it is done).
    let queue = Promise.resolve();
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    this.clients.add(sock);
    sock.on('close', () => {
      this.clients.delete(sock);
      this.unwatch(sock);
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        queue = queue.then(async () => {
          const reply = await this.answer(sock, line);
          if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
        });
      }
      if (Buffer.byteLength(buf) > MAX_REQUEST_BYTES) {
        this.log.log('warn', 'control request longer than 64 KiB: connection closed');
        sock.destroy();
      }
    });
  }

  /**
   * Answers a request in this process exactly as a connection would be answered (the same checks,
   * errors and log lines): for surfaces that live in the daemon, like `serve --http`'s dashboard.
   * `watch` needs a connection; in process, subscribe to the device's `events` instead.
   */
  request(req: ControlRequest): Promise<ControlReply> {
    return this.reply(null, req, undefined);
  }

  private async answer(sock: Socket, line: string): Promise<ControlReply> {
    let d: ReturnType<typeof decodeRequest>;
    try {
      d = decodeRequest(line);
    } catch (e) {
      return this.refused(e, e instanceof RequestError ? e.id : undefined);
    }
    return this.reply(sock, d.req, d.id);
  }

  private async reply(
    sock: Socket | null,
    req: ControlRequest,
    id: number | string | undefined,
  ): Promise<ControlReply> {
    try {
      const r = await this.execute(sock, req);
      return id === undefined ? r : { ...r, id };
    } catch (e) {
      return this.refused(e, id);
    }
  }

  private refused(e: unknown, id: number | string | undefined): ControlReply {
    const code = e instanceof RequestError ? e.code : 'failed';
    const error = e instanceof Error ? e.message : String(e);
    this.log.log('info', 'control request refused', { error });
    return { ok: false, code, error, ...(id === undefined ? {} : { id }) };
  }

  private async execute(sock: Socket | null, req: ControlRequest): Promise<ControlReply> {
    const wires = (): SimulatedLines => {
      if (this.target.lines) return this.target.lines;
      throw new RequestError('failed', `${req.op}: the lines are a host GPIO chip's, driven by its hardware`);
    };
    switch (req.op) {
      case 'hello':
        return { ok: true, protocol: CONTROL_PROTOCOL_VERSION, pid: process.pid };
      case 'status':
        return { ok: true, status: deviceStatus(this.target) };
      case 'input': {
        const line = this.resolve(req.line);
        wires().setInput(line, req.value);
        this.log.log('debug', 'input driven', { line, value: req.value });
        return { ok: true };
      }
      case 'pulse': {
        const line = this.resolve(req.line);
        await wires().pulse(line, req.widthMs);
        this.log.log('debug', 'input pulsed', { line, widthMs: req.widthMs });
        return { ok: true };
      }
      case 'output': {
        const line = this.resolve(req.line);
        const lines = wires();
        const v = lines.output(line);
        if (v === null)
          throw new RequestError(
            'not-output',
            `line ${line} is not an output (direction ${directionNameOf(lines.direction(line))})`,
          );
        return { ok: true, value: v };
      }
      case 'press':
      case 'release':
      case 'click': {
        // A board file's button on the line (src/board/button.ts).
        const [entry, button] = this.peripheralOn(req.op, req.line, 'button');
        if (req.op === 'click') await button.click(req.holdMs);
        else button[req.op]();
        return { ok: true, peripheral: peripheralState(entry) };
      }
      case 'clock': {
        const [entry, clock] = this.peripheralOn(req.op, req.line, 'clock');
        if (req.action === 'start') clock.run();
        else if (req.action === 'stop') clock.halt();
        if (req.action) this.log.log('debug', `clock ${req.action}`, { peripheral: entry.name });
        return { ok: true, peripheral: peripheralState(entry) };
      }
      case 'encoder': {
        // Replies once the encoder is there (|Δ| steps of its stepMs), or when a later move cuts it short.
        const [entry, encoder] = this.peripheralOn(req.op, req.line, 'encoder');
        if (req.position !== null) {
          this.log.log('debug', 'encoder moved', { peripheral: entry.name, position: req.position });
          await encoder.moveTo(req.position);
        }
        return { ok: true, peripheral: peripheralState(entry) };
      }
      case 'watch': {
        if (!sock) throw new RequestError('failed', 'watch needs a connection (in process: device.events)');
        const sel = req.lines ? new Set(req.lines.map((l) => this.resolve(l))) : null;
        this.watch(sock, { lines: sel, types: req.types ? new Set(req.types) : null, pending: '' });
        return { ok: true, timeNs: process.hrtime.bigint().toString(), status: deviceStatus(this.target) };
      }
    }
  }

  /** The board's `type` peripheral on the line, or the `failed` error naming what the line has instead. */
  private peripheralOn<K extends Operable['type']>(
    op: string,
    ref: LineRef,
    type: K,
  ): [LinePeripheral, OperableOf<K>] {
    const line = this.resolve(ref);
    const lines = this.target.lines;
    const entry = lines instanceof BoardLines ? lines.peripheralOn(line) : undefined;
    if (entry && isOf(entry.peripheral, type)) return [entry, entry.peripheral];
    const has = entry ? `; it has the ${entry.peripheral.type} "${entry.name}"` : '';
    throw new RequestError(
      'failed',
      `${op}: line ${line} has no ${type} (a board file's "${type}" peripheral${has})`,
    );
  }

  private resolve(ref: LineRef): number {
    const { device } = this.target;
    if (typeof ref === 'number') {
      if (ref < device.ngpio) return ref;
    } else {
      const byName = device.names.indexOf(ref);
      if (byName >= 0) return byName;
    }
    const named = device.names
      .map((n, i) => (n ? `${i} ${n}` : ''))
      .filter((s) => s !== '')
      .join(', ');
    throw new RequestError(
      'no-line',
      `no line ${JSON.stringify(ref)} (device has ${device.ngpio} lines: 0..${device.ngpio - 1}` +
        (named ? `; named: ${named}` : '') +
        ')',
    );
  }

  private watch(sock: Socket, w: Watch): void {
    this.watchers.set(sock, w);
    if (this.unsubscribe) return;
    const events = this.target.device.events;
    this.unsubscribe = events.subscribe((e) => this.broadcast(e));
  }

  private unwatch(sock: Socket): void {
    if (!this.watchers.delete(sock) || this.watchers.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private broadcast(e: DeviceEvent): void {
    let text: string | null = null;
    for (const [sock, w] of this.watchers) {
      if (w.types && !w.types.has(e.type)) continue;
      if (w.lines && 'line' in e && !w.lines.has(e.line)) continue;
      text ??= JSON.stringify(encodeEvent(e)) + '\n';
      w.pending += text;
      if (w.pending.length + sock.writableLength > WATCHER_BACKLOG_BYTES) {
        this.log.log('warn', 'a watcher does not keep up: connection closed');
        sock.destroy();
        this.unwatch(sock);
      }
    }
    if (text !== null && !this.flushScheduled) {
      // One write per watcher per event-loop turn, however many events the turn produced.
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [sock, w] of this.watchers) {
      if (w.pending === '') continue;
      sock.write(w.pending);
      w.pending = '';
    }
  }
}
