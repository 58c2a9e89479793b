import { ControlClient } from '../control/control-client.ts';
import type { DeviceStatus } from '../control/control-protocol.ts';
import { defineCommand } from './command.ts';
import { describePeripheral } from './peripheral-commands.ts';

export const command = defineCommand({
  usage: 'vgpio status PATH [--json]',
  help: `Prints every line of the device at PATH: name, direction, level, IRQ type (edge), IRQ state
(armed: the guest's eventq buffer is held; latched: an edge is pending), and the counters edges, delivered, latched, coalesced, invalid (the same names in text and JSON).
On a board, a PERIPHERAL column names the button, clock or encoder on a line, with its state.

Options:
  --json   the control endpoint's status object (docs/control-protocol.md), as JSON`,
  options: { json: { type: 'boolean' } },
  positionals: { min: 1, max: 1 },
  run: async (values, [path]) => {
    const c = await ControlClient.connect(path);
    try {
      const s = await c.status();
      process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      return 0;
    } finally {
      c.close();
    }
  },
});

export function formatStatus(s: DeviceStatus): string {
  const head = [
    `device ${s.socket}: ${s.ngpio} lines, front-end ${s.connected ? 'connected' : 'not connected'}` +
      (s.features ? `, features ${s.features}, interrupts ${s.irqNegotiated ? 'on' : 'off'}` : '') +
      (s.chip ? `, host chip ${s.chip.path} (${s.chip.state})` : ''),
  ];
  const f = s.frontend;
  if (f)
    head.push(
      `front-ends: connections ${f.connections}, messages ${f.messages}, refused ${f.refused}, ` +
        `dropped ${f.dropped}, malformedQueues ${f.malformedQueues}`,
    );
  const rows = [
    [
      'LINE',
      'NAME',
      'DIRECTION',
      'LEVEL',
      'EDGE',
      'IRQ-STATE',
      'EDGES',
      'DELIVERED',
      'LATCHED',
      'COALESCED',
      'INVALID',
    ],
  ];
  // Only a board with a button, clock or encoder gets the column (plain devices print as before).
  const peripherals = s.lines.some((l) => l.peripheral !== undefined);
  if (peripherals) rows[0].push('PERIPHERAL');
  for (const l of s.lines)
    rows.push([
      String(l.line),
      l.name || '-',
      l.direction,
      l.level,
      l.edge,
      [l.armed ? 'armed' : '', l.latched ? 'latched' : ''].filter(Boolean).join(',') || '-',
      String(l.counters.edges),
      String(l.counters.delivered),
      String(l.counters.latched),
      String(l.counters.coalesced),
      String(l.counters.invalid),
      ...(peripherals ? [l.peripheral ? describePeripheral(l.peripheral) : '-'] : []),
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
