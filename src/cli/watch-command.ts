import { ControlClient } from '../control/control-client.ts';
import type { ControlEvent, DeviceStatus, LineRef } from '../control/control-protocol.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

/** `12.345678901` from a nanosecond clock value. */
export const seconds = (timeNs: string): string => {
  const t = timeNs.padStart(10, '0');
  return `${t.slice(0, -9)}.${t.slice(-9)}`;
};

/** One event as a line of text: time, line and name, what happened (names and levels, no codes). */
export function formatEvent(e: ControlEvent): string {
  const who = e.line === undefined ? 'device' : `line ${e.line}${e.name ? ` (${e.name})` : ''}`;
  let what: string = e.event;
  switch (e.event) {
    case 'output':
    case 'input':
      what = `${e.event} ${e.from} -> ${e.to}`;
      break;
    case 'direction':
      what = `direction ${e.direction}`;
      break;
    case 'irq-type':
      what = `irq-type ${e.edge}`;
      break;
    case 'invalid':
      what = e.held ? 'invalid (held buffer returned: masked)' : 'invalid (buffer returned at once)';
      break;
    case 'armed':
      what = 'armed (eventq buffer held: unmasked)';
      break;
    case 'delivered':
      what = 'delivered (interrupt: masked until re-armed)';
      break;
    case 'dropped':
      what = 'dropped (held buffer forgotten: masked)';
      break;
    case 'disconnected':
      what = `front-end disconnected (${e.reason})`;
      break;
    case 'connected':
      what = 'front-end connected';
      break;
    case 'features':
      what = `features ${e.features} (interrupts ${e.irq ? 'on' : 'off'})`;
      break;
    case 'chip-gone':
      what = `host chip gone (${e.reason}): its lines answer ERR`;
      break;
    default:
      break;
  }
  return `${seconds(e.timeNs)} ${who}: ${what}`;
}

/** Checks LINE arguments against the device's lines; the error lists what exists. */
export function resolveLines(args: readonly string[], s: DeviceStatus): LineRef[] {
  return args.map((a) => {
    const byOffset = /^\d+$/.test(a) ? Number(a) : -1;
    const hit = s.lines.find((l) => l.line === byOffset || (a !== '' && l.name === a));
    if (!hit) {
      const named = s.lines.filter((l) => l.name).map((l) => `${l.line} ${l.name}`);
      throw new UsageError(
        `no line ${JSON.stringify(a)} on ${s.socket}: offsets 0..${s.ngpio - 1}` +
          (named.length ? `, names: ${named.join(', ')}` : ' (no line has a name)'),
      );
    }
    return hit.line;
  });
}

export const command = defineCommand({
  usage: 'vgpio watch PATH [LINE...] [--json] [--num-events N]',
  help: `Streams the device's events as they happen, one line each (like gpiomon): what the guest drives,
directions and IRQ types it sets, levels the host drives, edges latched, coalesced and delivered,
eventq buffers armed and returned, front-ends coming and going. LINE (offset or name) limits the
stream to those lines (device-wide events always show). Ctrl-C ends it; if the daemon goes away it
exits 1 with a message.

Options:
  --json            one JSON object per line (the control protocol's event objects)
  --num-events N    exit after N events`,
  options: { json: { type: 'boolean' }, 'num-events': { type: 'string' } },
  positionals: { min: 1 },
  run: async (values, [path, ...lineArgs]) => {
    let limit = Infinity;
    if (values['num-events'] !== undefined) {
      limit = Number(values['num-events']);
      if (!/^\d+$/.test(values['num-events']) || limit < 1)
        throw new UsageError(`--num-events must be a positive integer, not ${values['num-events']}`);
    }
    const c = await ControlClient.connect(path);
    const stop = () => c.close();
    // A reader that went away (`vgpio watch ... | head`) ends the watch quietly, as gpiomon does.
    process.stdout.on('error', stop);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const { status } = await c.startWatch();
      const lines = lineArgs.length ? resolveLines(lineArgs, status) : undefined;
      const which = lines
        ? `line${lines.length > 1 ? 's' : ''} ${lineArgs.join(', ')}`
        : `${status.ngpio} lines${status.chip ? ` of host chip ${status.chip.path}, ${status.chip.state}` : ''}`;
      process.stderr.write(`vgpio: watching ${path} (${which}); Ctrl-C ends\n`);
      let n = 0;
      for await (const e of c.events({ lines })) {
        process.stdout.write((values.json ? JSON.stringify(e) : formatEvent(e)) + '\n');
        if (++n >= limit) break;
      }
      return 0;
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      c.close();
    }
  },
});
