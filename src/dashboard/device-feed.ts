import type { ControlEvent, DeviceStatus, LevelName } from '../control/control-protocol.ts';
import { VcdWriter } from '../trace/vcd-writer.ts';
import type { DeviceLink } from './dashboard-server.ts';

/** The state a waveform needs per line: level and whether the guest's eventq buffer is held. */
export interface WaveState {
  level: LevelName;
  armed: boolean;
}

export interface FeedListener {
  events(device: number, events: ControlEvent[]): void;
  status(device: number, status: DeviceStatus): void;
  gone(device: number, error: string): void;
}

export interface DeviceFeedOptions {
  /** How far back the history reaches (for the waveform and VCD downloads). */
  historySeconds: number;
  /** At most this many events are kept whatever their age. */
  maxEvents?: number;
  /** After events, the status (counters) is fetched again at most this often. */
  statusEveryMs?: number;
}

const applyWave = (s: WaveState[], e: ControlEvent): void => {
  if (e.line === undefined || !s[e.line]) return;
  const l = s[e.line];
  if ((e.event === 'output' || e.event === 'input') && e.to) l.level = e.to;
  else if (e.event === 'armed') l.armed = true;
  else if (e.event === 'delivered' || e.event === 'dropped' || (e.event === 'invalid' && e.held))
    l.armed = false;
};

/**
 * One device as the dashboard sees it, through its control connection: the latest status, and a
 * bounded history of events with the wave state at its oldest end (so the last N seconds can be
 * drawn or exported exactly). Everything is pushed: events as they come; the status again,
 * throttled, after events changed counters.
 */
export class DeviceFeed {
  status!: DeviceStatus;
  private history: ControlEvent[] = [];
  private head = 0;
  /** Wave state just before history[head]. */
  private base: WaveState[] = [];
  private baseNs = 0n;
  private pending: ControlEvent[] = [];
  private flushScheduled = false;
  private statusTimer: NodeJS.Timeout | null = null;
  /** Lines a board peripheral sits on (from the latest status). */
  private peripheralLines = new Set<number>();
  private stop: (() => void) | null = null;
  private closed = false;
  private readonly maxEvents: number;
  private readonly statusEveryMs: number;

  constructor(
    readonly index: number,
    readonly label: string,
    private readonly client: DeviceLink,
    private readonly listener: FeedListener,
    private readonly opts: DeviceFeedOptions,
  ) {
    this.maxEvents = opts.maxEvents ?? 50_000;
    this.statusEveryMs = opts.statusEveryMs ?? 100;
  }

  async start(): Promise<void> {
    const s = await this.client.subscribe(
      (e) => this.event(e),
      (error) => {
        if (!this.closed) this.listener.gone(this.index, error?.message ?? 'closed');
      },
    );
    this.setStatus(s.status);
    this.base = s.status.lines.map((l) => ({ level: l.level, armed: l.armed }));
    this.baseNs = s.timeNs;
    this.stop = s.stop;
  }

  close(): void {
    this.closed = true;
    this.stop?.();
    if (this.statusTimer) clearTimeout(this.statusTimer);
  }

  private event(e: ControlEvent): void {
    this.history.push(e);
    this.trim(BigInt(e.timeNs));
    this.pending.push(e);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        const batch = this.pending;
        this.pending = [];
        if (!this.closed) this.listener.events(this.index, batch);
      });
    }
    // Counters change with IRQ events; a board peripheral's state (encoder position, clock running,
    // button pressed) with the levels of its lines.
    const onPeripheral = e.line !== undefined && this.peripheralLines.has(e.line);
    if ((onPeripheral || (e.event !== 'output' && e.event !== 'input')) && !this.statusTimer)
      this.statusTimer = setTimeout(() => void this.refresh(), this.statusEveryMs);
  }

  private setStatus(s: DeviceStatus): void {
    this.status = s;
    this.peripheralLines = new Set(s.lines.filter((l) => l.peripheral !== undefined).map((l) => l.line));
  }

  /** Fetches the status again soon (after a command changed what it shows). */
  refreshSoon(): void {
    if (!this.statusTimer && !this.closed) this.statusTimer = setTimeout(() => void this.refresh(), 0);
  }

  private async refresh(): Promise<void> {
    try {
      const s = await this.client.status();
      this.statusTimer = null;
      if (this.closed) return;
      this.setStatus(s);
      this.listener.status(this.index, s);
    } catch {
      this.statusTimer = null; // the connection ended: `gone` reports it
    }
  }

  /** Drops events older than the history window, folding them into the base state. */
  private trim(nowNs: bigint): void {
    const cutoff = nowNs - BigInt(Math.round(this.opts.historySeconds * 1e9));
    while (
      this.head < this.history.length &&
      (this.history.length - this.head > this.maxEvents || BigInt(this.history[this.head].timeNs) < cutoff)
    ) {
      const old = this.history[this.head++];
      applyWave(this.base, old);
      this.baseNs = BigInt(old.timeNs);
    }
    if (this.head > 4096 && this.head * 2 > this.history.length) {
      this.history = this.history.slice(this.head);
      this.head = 0;
    }
  }

  /** The wave state at `sinceNs` (or the oldest kept) and the events after it. */
  window(sinceNs: bigint): { timeNs: bigint; lines: WaveState[]; events: ControlEvent[] } {
    const lines = this.base.map((l) => ({ ...l }));
    let i = this.head;
    for (; i < this.history.length && BigInt(this.history[i].timeNs) < sinceNs; i++)
      applyWave(lines, this.history[i]);
    const from = sinceNs > this.baseNs ? sinceNs : this.baseNs;
    return { timeNs: from, lines, events: this.history.slice(i) };
  }

  /** The last `seconds` as a VCD file. */
  vcd(seconds: number, nowNs: bigint): string {
    const w = this.window(nowNs - BigInt(Math.round(seconds * 1e9)));
    let out = '';
    const writer = new VcdWriter({
      write: (c) => (out += c),
      devices: [
        {
          scope: this.label,
          lines: this.status.lines.map((l, i) => ({
            ...l,
            level: w.lines[i].level,
            armed: w.lines[i].armed,
          })),
        },
      ],
      startNs: w.timeNs,
    });
    for (const e of w.events) writer.event(0, e);
    writer.end(nowNs);
    return out;
  }
}
