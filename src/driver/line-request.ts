import { EventEmitter } from 'node:events';
import { Direction } from '../protocol/constants.ts';
import type { EdgeEvent } from './edge-event.ts';
import { EdgeEventStream } from './edge-event-stream.ts';
import type { GpioDriver } from './gpio-driver.ts';
import {
  edgeIrqType,
  normalizeSettings,
  type LineRequestConfig,
  type LineSettings,
} from './line-settings.ts';
import { GpioLineError } from './gpio-line-error.ts';

export type EdgeHandler = (event: EdgeEvent) => void | Promise<void>;

export interface LineRequestEvents {
  edge: [event: EdgeEvent];
}

/**
 * Lines requested from a chip (libgpiod v2's line request). Edge events arrive as 'edge' events,
 * through an async handler, and through async iterators; a line's interrupt is acknowledged (its
 * eventq buffer re-queued) only once every consumer is done with the event.
 */
export class LineRequest extends EventEmitter<LineRequestEvents> {
  readonly consumer: string;
  private settings = new Map<number, Required<LineSettings>>();
  private readonly lineSeqno = new Map<number, number>();
  private seqno = 0;
  private readonly streams = new Set<EdgeEventStream>();
  private handler: EdgeHandler | null = null;
  private released = false;

  constructor(
    private readonly driver: GpioDriver,
    config: LineRequestConfig,
    private readonly onRelease: () => void,
  ) {
    super();
    this.consumer = config.consumer ?? '';
  }

  get offsets(): number[] {
    return [...this.settings.keys()];
  }

  /** Settings in force for a line. */
  settingsOf(offset: number): Required<LineSettings> {
    return this.own(offset);
  }

  /** Applies settings line by line: value before direction for outputs, type before unmask for edges. */
  async apply(config: LineRequestConfig): Promise<void> {
    const next = new Map<number, Required<LineSettings>>();
    for (const [k, s] of Object.entries(config.lines)) next.set(Number(k), normalizeSettings(s, Number(k)));
    const edged = [...next].find(([, s]) => s.edge !== 'none');
    if (edged && !this.driver.irqSupported)
      throw new GpioLineError(
        'ENODEV',
        `line ${edged[0]}: edge detection needs VIRTIO_GPIO_F_IRQ, not negotiated`,
      );
    await Promise.all(
      [...next].map(async ([offset, s]) => {
        const old = this.settings.get(offset);
        if (old && old.edge !== 'none' && old.edge !== s.edge) await this.driver.disableIrq(offset);
        if (s.direction === 'output') {
          await this.driver.setValue(offset, s.outputValue);
          await this.driver.setDirection(offset, Direction.OUT);
        } else if (s.direction === 'input') {
          await this.driver.setDirection(offset, Direction.IN);
        }
        this.settings.set(offset, s);
        if (s.edge !== 'none' && old?.edge !== s.edge)
          await this.driver.enableIrq(offset, edgeIrqType[s.edge], (line, ts) => this.interrupt(line, ts));
      }),
    );
  }

  /** Changes the settings of lines already in the request (libgpiod: reconfigure_lines). */
  async reconfigure(config: LineRequestConfig): Promise<void> {
    this.live();
    for (const k of Object.keys(config.lines)) this.own(Number(k));
    await this.apply(config);
  }

  async getValue(offset: number): Promise<0 | 1> {
    this.own(offset);
    return this.driver.getValue(offset);
  }

  /**
   * Values of the given lines (all the request's lines by default), in that order: one batch of
   * GET_VALUE requests, one kick, one promise (libgpiod: gpiod_line_request_get_values).
   */
  async getValues(offsets: readonly number[] = this.offsets): Promise<Array<0 | 1>> {
    for (const o of offsets) this.own(o);
    return this.driver.getValues(offsets);
  }

  async setValue(offset: number, value: 0 | 1): Promise<void> {
    const s = this.own(offset);
    if (s.direction !== 'output') throw new GpioLineError('EPERM', `line ${offset} is not an output`);
    await this.driver.setValue(offset, value);
    s.outputValue = value;
  }

  /**
   * Sets several outputs as one batch of SET_VALUE requests (one kick, one promise); every line
   * is checked first, so a line that is not an output sends none.
   */
  async setValues(values: Record<number, 0 | 1>): Promise<void> {
    const lines: number[] = [];
    const levels: Array<0 | 1> = [];
    const settings: Array<Required<LineSettings>> = [];
    for (const [k, v] of Object.entries(values)) {
      const offset = Number(k);
      const s = this.own(offset);
      if (s.direction !== 'output') throw new GpioLineError('EPERM', `line ${offset} is not an output`);
      lines.push(offset);
      levels.push(v);
      settings.push(s);
    }
    await this.driver.setValues(lines, levels);
    settings.forEach((s, i) => (s.outputValue = levels[i]));
  }

  /** An async handler for edge events: the line stays masked until it settles. */
  setEdgeHandler(handler: EdgeHandler | null): void {
    this.handler = handler;
  }

  /** Edge events as an async iterator; each event is acknowledged when the next is requested. */
  edgeEvents(): AsyncIterableIterator<EdgeEvent> {
    this.live();
    const s = new EdgeEventStream((x) => this.streams.delete(x));
    this.streams.add(s);
    return s;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<EdgeEvent> {
    return this.edgeEvents();
  }

  /** Interrupts off, lines back to direction NONE (what Linux does when a line is freed). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const s of [...this.streams]) s.end();
    try {
      // Every line is released even when the device fails one: the first failure is reported after.
      const results = await Promise.allSettled(
        [...this.settings].map(async ([offset, s]) => {
          if (s.edge !== 'none' && this.driver.irqSupported) await this.driver.disableIrq(offset);
          await this.driver.setDirection(offset, Direction.NONE);
        }),
      );
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      this.onRelease();
      this.settings.clear();
    }
  }

  private async interrupt(offset: number, timestampNs: bigint): Promise<void> {
    const s = this.settings.get(offset);
    if (!s || this.released) return;
    let type: EdgeEvent['type'];
    if (s.edge === 'rising') type = 'rising';
    else if (s.edge === 'falling') type = 'falling';
    else type = (await this.driver.getValue(offset)) === 1 ? 'rising' : 'falling';
    const lineSeqno = (this.lineSeqno.get(offset) ?? 0) + 1;
    this.lineSeqno.set(offset, lineSeqno);
    const event: EdgeEvent = { type, offset, timestampNs, seqno: ++this.seqno, lineSeqno };
    this.emit('edge', event);
    await Promise.all([this.handler?.(event), ...[...this.streams].map((st) => st.push(event))]);
  }

  private own(offset: number): Required<LineSettings> {
    this.live();
    const s = this.settings.get(offset);
    if (!s) throw new GpioLineError('EINVAL', `line ${offset} is not part of this request`);
    return s;
  }

  private live(): void {
    if (this.released) throw new GpioLineError('EBADF', 'line request was released');
  }
}
