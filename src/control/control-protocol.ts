import type { LineSnapshot } from '../device/gpio-device.ts';

/** Control endpoint of a running daemon: newline-delimited JSON over a Unix socket beside the device socket. */
export const controlPathFor = (socketPath: string): string => `${socketPath}.ctl`;

/** A line is addressed by offset or by name. */
export type LineRef = number | string;

export type ControlRequest =
  | { op: 'status' }
  | { op: 'input'; line: LineRef; value: 0 | 1 }
  | { op: 'output'; line: LineRef }
  | { op: 'watch' };

export interface DeviceStatus {
  socket: string;
  /** The daemon's process id. */
  pid: number;
  connected: boolean;
  /** Features the front-end acknowledged (hex), or null before SET_FEATURES. */
  features: string | null;
  irqNegotiated: boolean;
  ngpio: number;
  lines: LineSnapshot[];
}

export type ControlReply = { ok: true; status?: DeviceStatus; value?: 0 | 1 } | { ok: false; error: string };

/** Pushed to `watch` clients. */
export type ControlEvent =
  | { event: 'irq'; line: number; status: 'VALID' | 'INVALID'; timeNs: string }
  | { event: 'line'; line: number; timeNs: string };
