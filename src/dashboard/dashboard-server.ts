import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  CLOCK_ACTIONS,
  ENCODER_POSITION_MAX,
  ENCODER_POSITION_MIN,
  type ClockAction,
  type ControlEvent,
  type DeviceStatus,
} from '../control/control-protocol.ts';
import type { Logger } from '../log/logger.ts';
import { dashboardPage } from './dashboard-page.ts';
import { DeviceFeed } from './device-feed.ts';

/**
 * What the dashboard needs of a device: its event stream with the state it starts from, its
 * status, and its inputs. A ControlClient is one (a daemon elsewhere); LocalDeviceLink another
 * (a device of this process).
 */
export interface DeviceLink {
  subscribe(
    listener: (e: ControlEvent) => void,
    onEnd?: (error: Error | null) => void,
  ): Promise<{ status: DeviceStatus; timeNs: bigint; stop: () => void }>;
  status(): Promise<DeviceStatus>;
  setInput(line: number, value: 0 | 1): Promise<void>;
  pulse(line: number, widthMs: number): Promise<void>;
  /** A board button on the line (control op press / release / click). */
  button(line: number, action: ButtonAction): Promise<void>;
  /** A board clock on the line (control op clock): start or stop it. */
  clock(line: number, action: ClockAction): Promise<unknown>;
  /** A board encoder on the line (control op encoder): move it to a position. */
  encoder(line: number, position: number): Promise<unknown>;
}

export type ButtonAction = 'press' | 'release' | 'click';
const BUTTON_ACTIONS: readonly ButtonAction[] = ['press', 'release', 'click'];

export interface DashboardDevice {
  /** Shown on the page and used as the VCD scope. */
  label: string;
  client: DeviceLink;
}

export interface DashboardOptions {
  host: string;
  port: number;
  /** Required unless `host` is a loopback address; then every request must carry it. */
  token?: string;
  devices: readonly DashboardDevice[];
  log: Logger;
  /** Seconds of history kept for the waveform and VCD downloads (default 60). */
  historySeconds?: number;
}

/** The messages a page may send (decoded field by field in `command`). */
type PageCommand =
  | { id: number; type: 'input'; device: number; line: number; value: 0 | 1 }
  | { id: number; type: 'pulse'; device: number; line: number; widthMs: number }
  | { id: number; type: 'button'; device: number; line: number; action: ButtonAction }
  | { id: number; type: 'clock'; device: number; line: number; action: ClockAction }
  | { id: number; type: 'encoder'; device: number; line: number; position: number };

const MAX_MESSAGE_BYTES = 4096;
/** Unsent bytes after which a page is dropped. */
const PAGE_BACKLOG_BYTES = 8 << 20;

export const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/** `host:port` → parts; IPv6 in brackets. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--http takes HOST:PORT (e.g. 127.0.0.1:8080), not ${JSON.stringify(s)}`);
  return { host: m[1] ?? m[2], port };
}

function sameToken(given: string | null, want: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The live dashboard: one page, a WebSocket that pushes every device's events as they happen,
 * commands from the page (set or pulse an input), and VCD downloads of the last N seconds.
 * Loopback-only unless a token is given; no CORS; the WebSocket's Origin must be the page's.
 */
export class DashboardServer {
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  private readonly feeds: DeviceFeed[];
  private readonly sockets = new Set<WebSocket>();
  private readonly historySeconds: number;
  private actualPort = 0;

  private constructor(private readonly opts: DashboardOptions) {
    this.historySeconds = opts.historySeconds ?? 60;
    this.feeds = opts.devices.map(
      (d, i) =>
        new DeviceFeed(
          i,
          d.label,
          d.client,
          {
            events: (device, events) => this.broadcast({ type: 'events', device, events }),
            status: (device, status) => this.broadcast({ type: 'status', device, status }),
            gone: (device, error) => {
              opts.log.log('warn', 'dashboard: a device went away', { device: d.label, error });
              this.broadcast({ type: 'gone', device, error });
            },
          },
          { historySeconds: this.historySeconds },
        ),
    );
    this.http = createServer((req, res) => this.request(req, res));
    this.http.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) =>
      this.upgrade(req, sock, head),
    );
  }

  static async start(opts: DashboardOptions): Promise<DashboardServer> {
    if (!isLoopbackHost(opts.host) && !opts.token)
      throw new Error(
        `the dashboard binds ${opts.host}, which is not a loopback address: give --http-token TOKEN (every request must then carry it)`,
      );
    if (opts.token !== undefined && !/^[\x21-\x7e]{8,}$/.test(opts.token))
      throw new Error('--http-token must be at least 8 printable ASCII characters, no spaces');
    const d = new DashboardServer(opts);
    for (const f of d.feeds) await f.start();
    await new Promise<void>((resolve, reject) => {
      d.http.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`dashboard: cannot listen on ${opts.host}:${opts.port}: ${e.message}`)),
      );
      d.http.listen(opts.port, opts.host, () => resolve());
    });
    const addr = d.http.address();
    d.actualPort = typeof addr === 'object' && addr ? addr.port : opts.port;
    // The token stays out of the log (logs travel further than the terminal that started this).
    opts.log.log('info', 'dashboard listening', {
      url: d.url.replace(/\?token=.*$/, ''),
      token: opts.token ? 'required' : 'none (loopback only)',
    });
    return d;
  }

  get port(): number {
    return this.actualPort;
  }

  /** The page's address (with the token when one is set). */
  get url(): string {
    const h = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    const t = this.opts.token ? `/?token=${encodeURIComponent(this.opts.token)}` : '/';
    return `http://${h}:${this.actualPort}${t}`;
  }

  async close(): Promise<void> {
    for (const f of this.feeds) f.close();
    for (const s of this.sockets) s.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  /** Why a request is refused (status, text), or null: token, and Host for a loopback-only page. */
  private refusal(req: IncomingMessage, url: URL): [number, string] | null {
    const { token } = this.opts;
    if (token) {
      const auth = req.headers.authorization;
      const given = url.searchParams.get('token') ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : null);
      if (!sameToken(given, token))
        return [401, 'a valid token is required (?token=... or Authorization: Bearer ...)\n'];
    } else {
      // Loopback without a token: only loopback names in Host (a DNS-rebinding page gets its own name).
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (!isLoopbackHost(host))
        return [403, `Host ${JSON.stringify(req.headers.host)} is not a loopback name\n`];
    }
    return null;
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const no = this.refusal(req, url);
    const common = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    };
    if (no) {
      res.writeHead(no[0], { ...common, 'Content-Type': 'text/plain; charset=utf-8' }).end(no[1]);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...common, Allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/') {
      const nonce = randomBytes(16).toString('base64');
      res
        .writeHead(200, {
          ...common,
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy':
            `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          'X-Frame-Options': 'DENY',
        })
        .end(dashboardPage(nonce));
      return;
    }
    if (url.pathname === '/vcd') {
      const device = Number(url.searchParams.get('device') ?? '0');
      const seconds = Number(url.searchParams.get('seconds') ?? '10');
      const feed = Number.isInteger(device) ? this.feeds[device] : undefined;
      if (!feed || !Number.isFinite(seconds) || seconds <= 0 || seconds > this.historySeconds) {
        res
          .writeHead(400, { ...common, 'Content-Type': 'text/plain; charset=utf-8' })
          .end(`device must be 0..${this.feeds.length - 1} and seconds 0..${this.historySeconds}\n`);
        return;
      }
      const name = feed.label.replace(/[^A-Za-z0-9_.-]/g, '_');
      res
        .writeHead(200, {
          ...common,
          'Content-Type': 'text/plain; charset=utf-8',
          'Content-Disposition': `attachment; filename="${name}.vcd"`,
        })
        .end(feed.vcd(seconds, process.hrtime.bigint()));
      return;
    }
    res.writeHead(404, { ...common, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  }

  private upgrade(req: IncomingMessage, sock: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const deny = (status: number, text: string) => {
      this.opts.log.log('warn', 'dashboard: WebSocket refused', { reason: text.trim() });
      sock.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nConnection: close\r\n\r\n${text}`,
      );
    };
    const no = this.refusal(req, url);
    if (no) return deny(no[0], no[1]);
    if (url.pathname !== '/ws') return deny(403, 'the WebSocket is at /ws\n');
    // Browsers always send Origin: it must be this page's own (no other site may drive lines).
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}`)
      return deny(403, `Origin ${origin} is not this dashboard\n`);
    const w = Number(url.searchParams.get('window') ?? '10');
    const windowSeconds = Number.isFinite(w) && w > 0 ? Math.min(w, this.historySeconds) : 10;
    this.wss.handleUpgrade(req, sock, head, (ws) => this.connected(ws, windowSeconds));
  }

  /** A page connected: the state and the last `windowSeconds` of events, then everything live. */
  private connected(ws: WebSocket, windowSeconds: number): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('error', () => ws.terminate());
    const nowNs = process.hrtime.bigint();
    const since = nowNs - BigInt(Math.round(windowSeconds * 1e9));
    ws.send(
      JSON.stringify({
        type: 'hello',
        nowNs: nowNs.toString(),
        historySeconds: this.historySeconds,
        devices: this.feeds.map((f) => {
          const w = f.window(since);
          return {
            label: f.label,
            status: f.status,
            since: { timeNs: w.timeNs.toString(), lines: w.lines },
            events: w.events,
          };
        }),
      }),
    );
    // One command at a time per page, answered in order.
    let queue = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      queue = queue.then(() => this.command(ws, text));
    });
  }

  private async command(ws: WebSocket, text: string | null): Promise<void> {
    let id: number | null = null;
    try {
      const c = decodeCommand(text, (v) => (id = v));
      const dev = this.opts.devices[c.device];
      if (!dev) throw new Error(`no device ${c.device} (the dashboard shows ${this.feeds.length})`);
      const { client } = dev;
      if (c.type === 'input') await client.setInput(c.line, c.value);
      else if (c.type === 'pulse') await client.pulse(c.line, c.widthMs);
      else {
        if (c.type === 'button') await client.button(c.line, c.action);
        else if (c.type === 'clock') await client.clock(c.line, c.action);
        else await client.encoder(c.line, c.position);
        // Every page shows the peripheral's new state (running, position) without waiting for an event.
        this.feeds[c.device].refreshSoon();
      }
      ws.send(JSON.stringify({ type: 'result', id, ok: true }));
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.opts.log.log('info', 'dashboard: command refused', { error });
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'result', id, ok: false, error }));
    }
  }

  private broadcast(
    msg:
      | { type: 'events'; device: number; events: ControlEvent[] }
      | { type: 'status'; device: number; status: DeviceStatus }
      | { type: 'gone'; device: number; error: string },
  ): void {
    if (this.sockets.size === 0) return;
    const text = JSON.stringify(msg);
    for (const s of this.sockets) {
      if (s.readyState !== WebSocket.OPEN) continue;
      if (s.bufferedAmount > PAGE_BACKLOG_BYTES) {
        // A page that does not keep up (a stalled tab): drop it rather than buffer without bound.
        this.opts.log.log('warn', 'dashboard: a page does not keep up: disconnected');
        s.terminate();
        continue;
      }
      s.send(text);
    }
  }
}

/** Decodes a page command; `onId` learns the id first, so even a refusal can name it. */
function decodeCommand(text: string | null, onId: (id: number) => void): PageCommand {
  if (text === null) throw new Error('commands are JSON text messages');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('a command is a JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a command is a JSON object');
  const o = v as Record<string, unknown>;
  const int = (k: string, max = 0xffff): number => {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max)
      throw new Error(`"${k}" must be an integer 0..${max}, not ${JSON.stringify(x)}`);
    return x;
  };
  const id = int('id', Number.MAX_SAFE_INTEGER);
  onId(id);
  const device = int('device');
  const line = int('line');
  if (o.type === 'input') {
    if (o.value !== 0 && o.value !== 1)
      throw new Error(`"value" must be 0 or 1, not ${JSON.stringify(o.value)}`);
    return { id, type: 'input', device, line, value: o.value };
  }
  if (o.type === 'pulse') {
    const w = o.widthMs ?? 50;
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > 10_000)
      throw new Error(`"widthMs" must be 0..10000 ms, not ${JSON.stringify(w)}`);
    return { id, type: 'pulse', device, line, widthMs: w };
  }
  if (o.type === 'button') {
    const action = BUTTON_ACTIONS.find((a) => a === o.action);
    if (!action) throw new Error(`"action" must be press, release or click, not ${JSON.stringify(o.action)}`);
    return { id, type: 'button', device, line, action };
  }
  if (o.type === 'clock') {
    const action = CLOCK_ACTIONS.find((a) => a === o.action);
    if (!action) throw new Error(`"action" must be start or stop, not ${JSON.stringify(o.action)}`);
    return { id, type: 'clock', device, line, action };
  }
  if (o.type === 'encoder') {
    const p = o.position;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < ENCODER_POSITION_MIN || p > ENCODER_POSITION_MAX)
      throw new Error(
        `"position" must be an integer ${ENCODER_POSITION_MIN}..${ENCODER_POSITION_MAX}, not ${JSON.stringify(p)}`,
      );
    return { id, type: 'encoder', device, line, position: p };
  }
  throw new Error(
    `"type" must be "input", "pulse", "button", "clock" or "encoder", not ${JSON.stringify(o.type)}`,
  );
}
