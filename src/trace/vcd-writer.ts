// Value Change Dump (IEEE 1364-2005 §18) of GPIO lines: per line a `wire` with its level, a
// `wire` that is 1 while the guest's eventq buffer is held (the line is unmasked, virtio 1.2
// §5.18.4.3), and an `event` marking each interrupt delivered. Text goes out in chunks as it is
// produced, so a long recording needs no memory beyond one chunk.
import type { ControlEvent, DeviceStatus } from '../control/control-protocol.ts';

/** One device's part of a trace: its scope name and the state its lines start in. */
export interface TraceDevice {
  scope: string;
  lines: DeviceStatus['lines'];
}

export interface VcdWriterOptions {
  /** Receives the file's text in order. */
  write: (chunk: string) => void;
  devices: readonly TraceDevice[];
  /** The clock value (ns) that becomes time #0. */
  startNs: bigint;
  /** Bytes buffered before `write` is called (default 64 KiB). */
  chunkBytes?: number;
  date?: Date;
}

interface Ids {
  level: string;
  armed: string;
  irq: string;
}

/** VCD identifier codes: printable ASCII 33..126, shortest first. */
function identifier(n: number): string {
  let s = '';
  do {
    s += String.fromCharCode(33 + (n % 94));
    n = Math.floor(n / 94);
  } while (n > 0);
  return s;
}

/** A VCD reference is one token: keep letters, digits and `_`. */
const reference = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, '_');

export class VcdWriter {
  private readonly ids: Ids[][];
  private readonly write: (chunk: string) => void;
  private readonly chunkBytes: number;
  private buf = '';
  private now = 0n;
  private readonly startNs: bigint;
  private ended = false;

  constructor(opts: VcdWriterOptions) {
    this.write = opts.write;
    this.chunkBytes = opts.chunkBytes ?? 65536;
    this.startNs = opts.startNs;
    let next = 0;
    const head = [
      `$date ${(opts.date ?? new Date()).toISOString()} $end`,
      '$version vgpio $end',
      '$timescale 1 ns $end',
    ];
    this.ids = opts.devices.map((d) => {
      head.push(`$scope module ${reference(d.scope)} $end`);
      const used = new Set<string>();
      const ids = d.lines.map((l) => {
        let base = reference(l.name || `gpio${l.line}`);
        if (used.has(base)) base = `${base}_${l.line}`;
        used.add(base);
        const ids: Ids = { level: identifier(next++), armed: identifier(next++), irq: identifier(next++) };
        head.push(
          `$var wire 1 ${ids.level} ${base} $end`,
          `$var wire 1 ${ids.armed} ${base}_armed $end`,
          `$var event 1 ${ids.irq} ${base}_irq $end`,
        );
        return ids;
      });
      head.push('$upscope $end');
      return ids;
    });
    head.push('$enddefinitions $end', '#0', '$dumpvars');
    opts.devices.forEach((d, i) =>
      d.lines.forEach((l, j) => {
        const ids = this.ids[i][j];
        head.push(`${l.level === 'high' ? 1 : 0}${ids.level}`, `${l.armed ? 1 : 0}${ids.armed}`);
      }),
    );
    head.push('$end');
    this.emit(head.join('\n') + '\n');
  }

  /** Adds one event of device `device` (index into `devices`); events that change no wire are skipped. */
  event(device: number, e: ControlEvent): void {
    if (this.ended || e.line === undefined) return;
    const ids = this.ids[device]?.[e.line];
    if (!ids) return;
    let change: string;
    switch (e.event) {
      case 'output':
      case 'input':
        change = `${e.to === 'high' ? 1 : 0}${ids.level}`;
        break;
      case 'armed':
        change = `1${ids.armed}`;
        break;
      case 'delivered':
        change = `0${ids.armed}\n1${ids.irq}`;
        break;
      case 'invalid':
        if (!e.held) return;
        change = `0${ids.armed}`;
        break;
      case 'dropped':
        change = `0${ids.armed}`;
        break;
      default:
        return;
    }
    this.at(BigInt(e.timeNs));
    this.emit(change + '\n');
  }

  /** Writes a final timestamp (so viewers show the last state up to `timeNs`) and flushes. */
  end(timeNs: bigint): void {
    if (this.ended) return;
    this.at(timeNs);
    this.ended = true;
    this.flush();
  }

  flush(): void {
    if (this.buf === '') return;
    const b = this.buf;
    this.buf = '';
    this.write(b);
  }

  private at(clockNs: bigint): void {
    let t = clockNs - this.startNs;
    if (t < this.now) t = this.now; // never backwards (events from before the start)
    if (t === this.now) return; // the time is already open (#0 from the start)
    this.now = t;
    this.emit(`#${t}\n`);
  }

  private emit(s: string): void {
    this.buf += s;
    if (this.buf.length >= this.chunkBytes) this.flush();
  }
}
