import {
  encodeEvent,
  type ClockAction,
  type ControlEvent,
  type ControlReply,
  type DeviceStatus,
} from '../control/control-protocol.ts';
import { deviceStatus, type ControlServer } from '../control/control-server.ts';
import type { ButtonAction, DeviceLink } from './dashboard-server.ts';

/**
 * A device of this very process, for the dashboard of `serve --http`: events straight from the
 * device's stream, commands through its control endpoint's in-process `request` (the checks and
 * log lines a socket client gets) — no socket, no second JSON round trip.
 */
export class LocalDeviceLink<T> implements DeviceLink {
  constructor(private readonly control: ControlServer<T>) {}

  async subscribe(
    listener: (e: ControlEvent) => void,
  ): Promise<{ status: DeviceStatus; timeNs: bigint; stop: () => void }> {
    const stop = this.control.target.device.events.subscribe((e) => listener(encodeEvent(e)));
    return { status: deviceStatus(this.control.target), timeNs: process.hrtime.bigint(), stop };
  }

  async status(): Promise<DeviceStatus> {
    return deviceStatus(this.control.target);
  }

  async setInput(line: number, value: 0 | 1): Promise<void> {
    const r = await this.control.request({ op: 'input', line, value });
    if (!r.ok) throw new Error(r.error);
  }

  async pulse(line: number, widthMs: number): Promise<void> {
    const r = await this.control.request({ op: 'pulse', line, widthMs });
    if (!r.ok) throw new Error(r.error);
  }

  async button(line: number, action: ButtonAction): Promise<void> {
    const r = await this.control.request(
      action === 'click' ? { op: action, line, holdMs: 50 } : { op: action, line },
    );
    if (!r.ok) throw new Error(r.error);
  }

  async clock(line: number, action: ClockAction): Promise<ControlReply> {
    const r = await this.control.request({ op: 'clock', line, action });
    if (!r.ok) throw new Error(r.error);
    return r;
  }

  async encoder(line: number, position: number): Promise<ControlReply> {
    const r = await this.control.request({ op: 'encoder', line, position });
    if (!r.ok) throw new Error(r.error);
    return r;
  }
}
