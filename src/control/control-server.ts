import { createServer, type Server, type Socket } from 'node:net';
import type { GpioDevice } from '../device/gpio-device.ts';
import { IrqStatus, directionName } from '../protocol/constants.ts';
import type { SimulatedLines } from '../device/simulated-lines.ts';
import type { Logger } from '../log/logger.ts';
import { bindSocketFile, removeStaleSocket } from '../transports/socket-file.ts';
import type {
  ControlEvent,
  ControlReply,
  ControlRequest,
  DeviceStatus,
  LineRef,
} from './control-protocol.ts';

export interface ControlTarget<T> {
  device: GpioDevice<T>;
  lines: SimulatedLines;
  status(): Omit<DeviceStatus, 'lines' | 'ngpio'>;
}

/** Serves a device's control endpoint: drive inputs, read outputs, status, a stream of events. */
export class ControlServer<T> {
  private readonly server: Server;
  private readonly watchers = new Set<Socket>();

  private constructor(
    readonly path: string,
    private readonly target: ControlTarget<T>,
    private readonly log: Logger,
  ) {
    this.server = createServer((sock) => this.client(sock));
    target.device.on('irq', this.onIrq);
    target.device.on('line', this.onLine);
  }

  private readonly onIrq = (line: number, status: IrqStatus): void =>
    this.broadcast({
      event: 'irq',
      line,
      status: status === IrqStatus.VALID ? 'VALID' : 'INVALID',
      timeNs: now(),
    });
  private readonly onLine = (line: number): void => this.broadcast({ event: 'line', line, timeNs: now() });

  static async listen<T>(
    path: string,
    target: ControlTarget<T>,
    log: Logger,
    mode = 0o600,
  ): Promise<ControlServer<T>> {
    const c = new ControlServer(path, target, log);
    const listening = new Promise<void>((resolve, reject) => {
      c.server.once('error', reject);
      c.server.once('listening', () => resolve());
    });
    bindSocketFile(path, mode, () => c.server.listen(path));
    await listening;
    return c;
  }

  async close(): Promise<void> {
    this.target.device.off('irq', this.onIrq);
    this.target.device.off('line', this.onLine);
    for (const w of this.watchers) w.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    try {
      removeStaleSocket(this.path);
    } catch {
      // gone already
    }
  }

  private client(sock: Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.watchers.delete(sock));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 65536) return sock.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        let reply: ControlReply;
        try {
          const req = JSON.parse(line) as ControlRequest;
          if (req.op === 'watch') {
            this.watchers.add(sock);
            reply = { ok: true };
          } else {
            reply = this.execute(req);
          }
        } catch (e) {
          reply = { ok: false, error: (e as Error).message };
        }
        sock.write(JSON.stringify(reply) + '\n');
      }
    });
  }

  private execute(req: ControlRequest): ControlReply {
    const { device, lines } = this.target;
    switch (req.op) {
      case 'status':
        return {
          ok: true,
          status: { ...this.target.status(), ngpio: device.ngpio, lines: device.snapshot() },
        };
      case 'input': {
        const line = this.resolve(req.line);
        if (req.value !== 0 && req.value !== 1)
          return { ok: false, error: `value must be 0 or 1, not ${req.value}` };
        lines.setInput(line, req.value);
        this.log.log('debug', 'input driven', { line, value: req.value });
        return { ok: true };
      }
      case 'output': {
        const line = this.resolve(req.line);
        const v = lines.output(line);
        if (v === null)
          return {
            ok: false,
            error: `line ${line} is not an output (direction ${directionName(lines.direction(line)).toLowerCase()})`,
          };
        return { ok: true, value: v };
      }
      default:
        return { ok: false, error: `unknown op ${JSON.stringify((req as { op: unknown }).op)}` };
    }
  }

  private resolve(ref: LineRef): number {
    const { device } = this.target;
    if (typeof ref === 'number' && Number.isInteger(ref) && ref >= 0 && ref < device.ngpio) return ref;
    if (typeof ref === 'string') {
      const byName = device.names.indexOf(ref);
      if (ref !== '' && byName >= 0) return byName;
      if (/^\d+$/.test(ref) && Number(ref) < device.ngpio) return Number(ref);
    }
    throw new Error(
      `no line ${JSON.stringify(ref)} (device has ${device.ngpio} lines: 0..${device.ngpio - 1})`,
    );
  }

  private broadcast(e: ControlEvent): void {
    if (this.watchers.size === 0) return;
    const line = JSON.stringify(e) + '\n';
    for (const w of this.watchers) w.write(line);
  }
}

const now = (): string => process.hrtime.bigint().toString();
