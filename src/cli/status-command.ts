import { ControlClient } from '../control/control-client.ts';
import type { DeviceStatus } from '../control/control-protocol.ts';
import { directionName, irqTypeName } from '../protocol/constants.ts';
import { defineCommand } from './command.ts';

export const command = defineCommand({
  usage: 'vgpio status PATH [--json]',
  help: `Prints every line of the device at PATH: name, direction, value, IRQ type, armed, latched, counters.

Options:
  --json   the control endpoint's status object, as JSON`,
  options: { json: { type: 'boolean' } },
  positionals: { min: 1, max: 1 },
  run: async (values, [path]) => {
    const c = await ControlClient.connect(path);
    try {
      const r = await c.request({ op: 'status' });
      if (!r.ok || !r.status) throw new Error(r.ok ? 'no status in reply' : r.error);
      process.stdout.write(values.json ? JSON.stringify(r.status, null, 2) + '\n' : formatStatus(r.status));
      return 0;
    } finally {
      c.close();
    }
  },
});

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
