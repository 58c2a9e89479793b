import type { VirtioDriverTransport } from '../virtio/driver-transport.ts';
import { GpioDriver, type GpioDriverOptions } from './gpio-driver.ts';
import { LineRequest } from './line-request.ts';
import {
  directionSetting,
  type DirectionSetting,
  type EdgeSetting,
  type LineRequestConfig,
} from './line-settings.ts';
import { GpioLineError } from './gpio-line-error.ts';

export interface ChipInfo {
  name: string;
  label: string;
  numLines: number;
}

export interface LineInfo {
  offset: number;
  name: string;
  used: boolean;
  consumer: string;
  direction: DirectionSetting;
  edge: EdgeSetting;
}

/** A virtio-gpio chip in libgpiod v2 terms: info, line info, line requests. */
export class Chip {
  private readonly owners = new Map<number, LineRequest>();

  private constructor(
    readonly driver: GpioDriver,
    readonly name: string,
  ) {}

  static async open(
    transport: VirtioDriverTransport,
    opts: GpioDriverOptions & { name?: string } = {},
  ): Promise<Chip> {
    return new Chip(await GpioDriver.open(transport, opts), opts.name ?? 'virtio-gpio');
  }

  async info(): Promise<ChipInfo> {
    return { name: this.name, label: 'virtio-gpio', numLines: this.driver.ngpio };
  }

  async lineInfo(offset: number): Promise<LineInfo> {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.driver.ngpio)
      throw new GpioLineError('EINVAL', `line ${offset} out of range`);
    const owner = this.owners.get(offset);
    const dir = directionSetting(await this.driver.getDirection(offset));
    return {
      offset,
      name: this.driver.names[offset] ?? '',
      used: owner !== undefined,
      consumer: owner?.consumer ?? '',
      direction: dir,
      edge: owner?.settingsOf(offset).edge ?? 'none',
    };
  }

  /** Requests lines; a line already in another request is EBUSY. */
  async requestLines(config: LineRequestConfig): Promise<LineRequest> {
    const offsets = Object.keys(config.lines).map(Number);
    if (offsets.length === 0) throw new GpioLineError('EINVAL', 'no lines requested');
    for (const o of offsets) {
      if (!Number.isInteger(o) || o < 0 || o >= this.driver.ngpio)
        throw new GpioLineError('EINVAL', `line ${o} out of range`);
      if (this.owners.has(o)) throw new GpioLineError('EBUSY', `line ${o} is busy`);
    }
    const req = new LineRequest(this.driver, config, () => {
      for (const [o, owner] of this.owners) if (owner === req) this.owners.delete(o);
    });
    for (const o of offsets) this.owners.set(o, req);
    try {
      await req.apply(config);
    } catch (e) {
      await req.release().catch(() => {});
      throw e;
    }
    return req;
  }

  async close(): Promise<void> {
    for (const r of new Set(this.owners.values())) await r.release().catch(() => {});
    await this.driver.close();
  }
}
