import {
  ENCODER_POSITION_MAX,
  ENCODER_POSITION_MIN,
  type ClockAction,
  type LineRef,
  type PeripheralState,
} from '../control/control-protocol.ts';
import { defineCommand } from './command.ts';
import { withClient } from './line-commands.ts';
import { UsageError } from './usage-error.ts';

const lineRef = (s: string): LineRef => {
  if (s === '') throw new UsageError('a LINE is empty');
  return /^\d+$/.test(s) ? Number(s) : s;
};

/** One line for a person: `clock tick: running, period 10 ms, duty 0.5`. */
export function describePeripheral(p: PeripheralState): string {
  switch (p.type) {
    case 'button':
      return `button ${p.name}: ${p.pressed ? 'pressed' : 'released'}`;
    case 'clock':
      return `clock ${p.name}: ${p.running ? 'running' : 'stopped'}, period ${p.periodMs} ms, duty ${p.duty}`;
    case 'encoder':
      return (
        `encoder ${p.name}: position ${p.position}` +
        (p.target === p.position ? '' : ` (moving to ${p.target})`) +
        `, A=${p.a} B=${p.b}`
      );
  }
}

const print = (p: PeripheralState, json: boolean | undefined): void => {
  process.stdout.write(`${json ? JSON.stringify(p) : describePeripheral(p)}\n`);
};

const BUTTON_ACTIONS = ['press', 'release', 'click'] as const;

export const buttonCommand = defineCommand({
  usage: 'vgpio button PATH LINE press|release|click [--hold-ms MS] [--json]',
  help: `Operates the board button on LINE (an offset or a name; a board file's "button" peripheral):
press, release, or click (press, hold, release; returns once released). Prints its state after.

  --hold-ms MS   how long a click holds the button after its bounce (0..60000, default 50)
  --json         print the state as JSON (docs/control-protocol.md §2)

Example: vgpio button /tmp/vm-a.sock button click --hold-ms 200`,
  options: { 'hold-ms': { type: 'string' }, json: { type: 'boolean' } },
  positionals: { min: 3, max: 3 },
  run: async (values, [path, line, word]) => {
    const action = BUTTON_ACTIONS.find((a) => a === word);
    if (!action) throw new UsageError(`action ${JSON.stringify(word)} is not press, release or click`);
    let holdMs: number | undefined;
    if (values['hold-ms'] !== undefined) {
      if (action !== 'click') throw new UsageError('--hold-ms goes with click');
      holdMs = Number(values['hold-ms']);
      if (!/^\d+(\.\d+)?$/.test(values['hold-ms']) || holdMs > 60_000)
        throw new UsageError(
          `--hold-ms takes milliseconds 0..60000, not ${JSON.stringify(values['hold-ms'])}`,
        );
    }
    return withClient(path, async (c) => {
      const r = await c.request(
        action === 'click'
          ? { op: action, line: lineRef(line), holdMs }
          : { op: action, line: lineRef(line) },
      );
      if (!r.ok) throw new Error(r.error);
      if (r.peripheral) print(r.peripheral, values.json);
      return 0;
    });
  },
});

const CLOCK_ACTIONS: readonly ClockAction[] = ['start', 'stop'];

export const clockCommand = defineCommand({
  usage: 'vgpio clock PATH LINE [start|stop] [--json]',
  help: `Starts or stops the board clock driving LINE (an offset or a name; a board file's "clock"
peripheral), or without an action prints its state: running or stopped, period and duty.
Started, its first rising edge is now; stopped, it drives 0.

  --json   print the state as JSON (docs/control-protocol.md §2)

Example: vgpio clock /tmp/vm-a.sock clk stop`,
  options: { json: { type: 'boolean' } },
  positionals: { min: 2, max: 3 },
  run: async (values, [path, line, word]) => {
    let action: ClockAction | undefined;
    if (word !== undefined) {
      action = CLOCK_ACTIONS.find((a) => a === word);
      if (!action) throw new UsageError(`action ${JSON.stringify(word)} is not start or stop`);
    }
    return withClient(path, async (c) => {
      print(await c.clock(lineRef(line), action), values.json);
      return 0;
    });
  },
});

export const encoderCommand = defineCommand({
  usage: 'vgpio encoder PATH LINE [POSITION] [--json]',
  help: `Turns the board encoder on LINE (either of its A/B lines, an offset or a name; a board file's
"encoder" peripheral) to POSITION, one quadrature step per stepMs, and returns once it is there;
without POSITION prints where it is. Prints its position and A/B levels.

A negative POSITION goes after --:  vgpio encoder /tmp/vm-a.sock knob-a -- -4

  --json   print the state as JSON (docs/control-protocol.md §2)

Example: vgpio encoder /tmp/vm-a.sock knob-a 12`,
  options: { json: { type: 'boolean' } },
  positionals: { min: 2, max: 3 },
  run: async (values, [path, line, word]) => {
    let position: number | undefined;
    if (word !== undefined) {
      position = Number(word);
      if (!/^-?\d+$/.test(word) || position < ENCODER_POSITION_MIN || position > ENCODER_POSITION_MAX)
        throw new UsageError(
          `POSITION must be an integer in ${ENCODER_POSITION_MIN}..${ENCODER_POSITION_MAX}, not ${JSON.stringify(word)}`,
        );
    }
    return withClient(path, async (c) => {
      print(await c.encoder(lineRef(line), position), values.json);
      return 0;
    });
  },
});
