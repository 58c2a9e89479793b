import { ControlClient } from '../control/control-client.ts';
import type { LineRef } from '../control/control-protocol.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

const lineRef = (s: string): LineRef => {
  if (s === '') throw new UsageError('a LINE is empty');
  return /^\d+$/.test(s) ? Number(s) : s;
};

/** libgpiod's value words (gpioset v2): 1/0, active/inactive, on/off, true/false. */
const VALUE_WORDS: Record<string, 0 | 1> = {
  '1': 1,
  active: 1,
  on: 1,
  true: 1,
  '0': 0,
  inactive: 0,
  off: 0,
  false: 0,
};

export function parseValue(word: string): 0 | 1 {
  const v = VALUE_WORDS[word.toLowerCase()];
  if (v === undefined)
    throw new UsageError(`value ${JSON.stringify(word)} is not 1/0, active/inactive, on/off or true/false`);
  return v;
}

/** `LINE VALUE` (the original form) or `LINE=VALUE ...`. */
export function parseAssignments(args: string[]): Array<{ line: LineRef; value: 0 | 1 }> {
  if (args.length === 2 && !args[0].includes('=') && !args[1].includes('='))
    return [{ line: lineRef(args[0]), value: parseValue(args[1]) }];
  return args.map((a) => {
    const eq = a.lastIndexOf('=');
    if (eq < 0) throw new UsageError(`${JSON.stringify(a)} is not LINE=VALUE`);
    return { line: lineRef(a.slice(0, eq)), value: parseValue(a.slice(eq + 1)) };
  });
}

/** Throws the "no line" error, listing the device's lines, unless `ref` names one of `lines`. */
function checkLine(ref: LineRef, lines: ReadonlyArray<{ line: number; name: string }>): void {
  if (lines.some((l) => (typeof ref === 'number' ? l.line === ref : l.name === ref))) return;
  const named = lines.filter((l) => l.name !== '').map((l) => `${l.line} ${l.name}`);
  throw new Error(
    `no line ${JSON.stringify(ref)} (device has ${lines.length} lines: 0..${lines.length - 1}` +
      (named.length ? `; named: ${named.join(', ')}` : '') +
      ')',
  );
}

/** Runs `fn` on a control connection to `path`, closed afterwards whatever happens. */
export async function withClient<T>(path: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c = await ControlClient.connect(path);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

export const inputCommand = defineCommand({
  usage: 'vgpio input PATH LINE=VALUE [LINE=VALUE...] | vgpio input PATH LINE VALUE',
  help: `Sets the level the guest senses on each LINE (an offset or a name), in the order given.
An armed interrupt fires; an edge on a masked line is latched until the guest re-arms it.

VALUE is 1/0, active/inactive, on/off or true/false. Example: vgpio input /tmp/vgpio.sock button=1 reset=0`,
  options: {},
  positionals: { min: 2 },
  run: async (_values, [path, ...rest]) => {
    const assignments = parseAssignments(rest);
    return withClient(path, async (c) => {
      // All lines are checked before any is set: a typo in the third pair changes nothing.
      if (assignments.length > 1) {
        const r = await c.request({ op: 'status' });
        if (!r.ok || !r.status) throw new Error(r.ok ? 'no status in reply' : r.error);
        for (const a of assignments) checkLine(a.line, r.status.lines);
      }
      for (const a of assignments) {
        const r = await c.request({ op: 'input', line: a.line, value: a.value });
        if (!r.ok) throw new Error(r.error);
      }
      return 0;
    });
  },
});

export const outputCommand = defineCommand({
  usage: 'vgpio output PATH LINE',
  help: `Prints the level (0 or 1) the guest drives on LINE (an offset or a name); fails if LINE is not an output.`,
  options: {},
  positionals: { min: 2, max: 2 },
  run: async (_values, [path, line]) =>
    withClient(path, async (c) => {
      const r = await c.request({ op: 'output', line: lineRef(line) });
      if (!r.ok) throw new Error(r.error);
      process.stdout.write(`${r.value}\n`);
      return 0;
    }),
});
