import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import {
  controlPathFor,
  type ControlEvent,
  type ControlReply,
  type ControlRequest,
} from './control-protocol.ts';

/** Talks to a running daemon's control endpoint, addressed by the device's socket path. */
export class ControlClient {
  private buf = '';
  private waiting: Array<(r: ControlReply) => void> = [];
  private eventListener: ((e: ControlEvent) => void) | null = null;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let msg: ControlReply | ControlEvent;
        try {
          msg = JSON.parse(line) as ControlReply | ControlEvent;
        } catch {
          msg = { ok: false, error: `malformed reply from the daemon: ${line.slice(0, 80)}` };
        }
        if ('event' in msg) this.eventListener?.(msg);
        else this.waiting.shift()?.(msg);
      }
    });
    sock.on('close', () => {
      for (const w of this.waiting.splice(0)) w({ ok: false, error: 'daemon closed the control connection' });
    });
  }

  static async connect(devicePath: string, timeoutMs = 5000): Promise<ControlClient> {
    const path = controlPathFor(devicePath);
    if (!existsSync(path))
      throw new Error(`no vgpio daemon serves ${devicePath} (control socket ${path} does not exist)`);
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`control socket ${path}: no answer in ${timeoutMs} ms`)),
        timeoutMs,
      );
      sock.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        const why = e.code === 'ECONNREFUSED' ? 'the daemon is not running (stale socket)' : e.message;
        reject(new Error(`cannot reach the vgpio daemon for ${devicePath}: ${why}`));
      });
    });
    return new ControlClient(sock);
  }

  request(req: ControlRequest): Promise<ControlReply> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(JSON.stringify(req) + '\n');
    });
  }

  /** Streams device events (irq hand-backs, line changes) to the listener. */
  async watch(listener: (e: ControlEvent) => void): Promise<void> {
    this.eventListener = listener;
    const r = await this.request({ op: 'watch' });
    if (!r.ok) throw new Error(r.error);
  }

  close(): void {
    this.sock.destroy();
  }
}
