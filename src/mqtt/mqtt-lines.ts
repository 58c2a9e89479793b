import { resolveRef } from '../board/board-layout.ts';
import { BoardLines } from '../board/board-lines.ts';
import type { GpioDevice } from '../device/gpio-device.ts';
import type { SimulatedLines } from '../device/simulated-lines.ts';
import type { MqttSection } from './mqtt-schema.ts';

/** A served device as the bridge sees it: its name in topics and references, its model and lines. */
export interface BridgedDevice {
  name: string;
  gpio: Pick<GpioDevice<unknown>, 'events' | 'snapshot' | 'ngpio' | 'names'>;
  /** The simulated lines that commands and wires set; null for a host chip (publish only). */
  lines: SimulatedLines | null;
}

/** One line on the broker: PREFIX/DEVICE/LINE/... */
export interface BridgedLine {
  device: BridgedDevice;
  line: number;
  /** PREFIX/DEVICE/LINE */
  base: string;
  /** Its `set` is obeyed. */
  commands: boolean;
}

/** A topic whose `0`/`1` payloads drive local inputs (the receiving end of a wire across hosts). */
export interface WireIn {
  topic: string;
  targets: BridgedLine[];
}

/** A local line whose level goes to a topic (the sending end). */
export interface WireOut {
  from: BridgedLine;
  topic: string;
}

export interface BridgeLayout {
  prefix: string;
  /** Published lines by `device\0line`. */
  lines: Map<string, BridgedLine>;
  wiresIn: WireIn[];
  wiresOut: WireOut[];
}

/** A reference in the mqtt section that does not hold: every issue, each at its JSON path. */
export class MqttConfigError extends Error {
  override name = 'MqttConfigError';
}

const keyOf = (device: string, line: number): string => `${device}\0${line}`;

/**
 * Resolves the mqtt section against the served devices: the lines published, those taking commands,
 * and the wire ends. Lines a topic drives are claimed on the board (BoardLines), so the control socket
 * refuses to set them by hand. Throws an MqttConfigError naming every bad reference.
 */
export function layoutBridge(
  section: MqttSection,
  devices: readonly BridgedDevice[],
  prefix: string,
): BridgeLayout {
  const issues: string[] = [];
  const spec = {
    devices: devices.map((d) => ({ name: d.name, lines: d.gpio.ngpio, names: d.gpio.names })),
  };
  const lines = new Map<string, BridgedLine>();
  const lineOf = (d: BridgedDevice, line: number): BridgedLine => {
    const k = keyOf(d.name, line);
    let l = lines.get(k);
    if (!l) lines.set(k, (l = { device: d, line, base: `${prefix}/${d.name}/${line}`, commands: false }));
    return l;
  };
  const resolve = (ref: string, at: string): BridgedLine | null => {
    const r = resolveRef(spec, ref);
    if (typeof r === 'string') {
      issues.push(`mqtt.${at}: ${r}`);
      return null;
    }
    return lineOf(devices[r.device], r.line);
  };
  const settable = (l: BridgedLine, at: string): boolean => {
    if (l.device.lines) return true;
    issues.push(
      `mqtt.${at}: ${l.device.name} serves a host chip: its lines are the hardware's, not settable`,
    );
    return false;
  };

  if (section.publish === undefined)
    for (const d of devices) for (let i = 0; i < d.gpio.ngpio; i++) lineOf(d, i);
  else section.publish.forEach((ref, i) => resolve(ref, `publish[${i}]`));
  (section.commands ?? []).forEach((ref, i) => {
    const l = resolve(ref, `commands[${i}]`);
    if (!l || !settable(l, `commands[${i}]`)) return;
    const board = l.device.lines instanceof BoardLines ? l.device.lines.driverOf(l.line) : undefined;
    if (board !== undefined)
      issues.push(`mqtt.commands[${i}]: ${ref} is driven by ${board}: it takes no commands`);
    else l.commands = true;
  });

  const wiresIn: WireIn[] = [];
  const wiresOut: WireOut[] = [];
  const driven = new Map<string, string>();
  (section.wires ?? []).forEach((w, i) => {
    if ('from' in w) {
      const from = resolve(w.from, `wires[${i}].from`);
      if (from) wiresOut.push({ from, topic: w.topic });
      return;
    }
    const refs = Array.isArray(w.to) ? w.to : [w.to];
    const targets: BridgedLine[] = [];
    refs.forEach((ref, j) => {
      const at = `wires[${i}].to${Array.isArray(w.to) ? `[${j}]` : ''}`;
      const l = resolve(ref, at);
      if (!l || !settable(l, at)) return;
      const k = keyOf(l.device.name, l.line);
      const board = l.device.lines instanceof BoardLines ? l.device.lines.driverOf(l.line) : undefined;
      const other = driven.get(k) ?? board ?? (l.commands ? 'its MQTT set topic (mqtt.commands)' : undefined);
      if (other !== undefined) issues.push(`mqtt.${at}: ${ref} is already driven by ${other}`);
      else {
        driven.set(k, `MQTT topic ${w.topic}`);
        targets.push(l);
      }
    });
    if (targets.length) wiresIn.push({ topic: w.topic, targets });
  });
  if (issues.length) throw new MqttConfigError(issues.join('\n'));
  // Claimed only once the whole section holds.
  for (const w of wiresIn)
    for (const t of w.targets)
      if (t.device.lines instanceof BoardLines) t.device.lines.claim(t.line, `MQTT topic ${w.topic}`);
  return { prefix, lines, wiresIn, wiresOut };
}
