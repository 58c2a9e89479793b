import { ControlClient } from '../control/control-client.ts';
import type { DeviceStatus, LineRef } from '../control/control-protocol.ts';
import { directionName, irqTypeName } from '../protocol/constants.ts';
import { UsageError } from './usage-error.ts';

const lineRef = (s: string | undefined): LineRef => {
  if (s === undefined || s === '') throw new UsageError('LINE is missing');
  return /^\d+$/.test(s) ? Number(s) : s;
};

async function withClient<T>(path: string | undefined, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  if (!path) throw new UsageError('PATH (the device socket) is missing');
  const c = await ControlClient.connect(path);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** `vgpio input PATH LINE 0|1`: the level the guest senses on LINE. */
export async function input(args: string[]): Promise<number> {
  const [path, line, value] = args;
  if (value !== '0' && value !== '1') throw new UsageError('the value must be 0 or 1');
  return withClient(path, async (c) => {
    const r = await c.request({ op: 'input', line: lineRef(line), value: Number(value) as 0 | 1 });
    if (!r.ok) throw new Error(r.error);
    return 0;
  });
}

/** `vgpio output PATH LINE`: prints the level the guest drives. */
export async function output(args: string[]): Promise<number> {
  const [path, line] = args;
  return withClient(path, async (c) => {
    const r = await c.request({ op: 'output', line: lineRef(line) });
    if (!r.ok) throw new Error(r.error);
    process.stdout.write(`${r.value}\n`);
    return 0;
  });
}

/** `vgpio status PATH [--json]`. */
export async function status(args: string[], json: boolean): Promise<number> {
  return withClient(args[0], async (c) => {
    const r = await c.request({ op: 'status' });
    if (!r.ok || !r.status) throw new Error(r.ok ? 'no status in reply' : r.error);
    process.stdout.write(json ? JSON.stringify(r.status, null, 2) + '\n' : formatStatus(r.status));
    return 0;
  });
}

export function formatStatus(s: DeviceStatus): string {
  const head = [
    `device ${s.socket}: ${s.ngpio} lines, front-end ${s.connected ? 'connected' : 'not connected'}` +
      (s.features ? `, features ${s.features}, interrupts ${s.irqNegotiated ? 'on' : 'off'}` : ''),
  ];
  const rows = [['LINE', 'NAME', 'DIR', 'VALUE', 'IRQ', 'ARMED', 'LATCHED', 'EDGES', 'IRQS', 'INVALID']];
  for (const l of s.lines)
    rows.push([
      String(l.line),
      l.name || '-',
      directionName(l.direction).toLowerCase(),
      String(l.value),
      irqTypeName(l.irqType).toLowerCase(),
      l.armed ? 'yes' : 'no',
      l.latched ? 'yes' : 'no',
      String(l.counters.edges),
      String(l.counters.delivered),
      String(l.counters.invalid),
    ]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    [
      ...head,
      ...rows.map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
      ),
    ].join('\n') + '\n'
  );
}
