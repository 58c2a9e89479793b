import { formatResults, runConformance, selectRules } from '../conformance/conformance-runner.ts';
import { HarnessError } from '../conformance/harness-error.ts';
import { CommandInputDriver, ControlInputDriver, type InputDriver } from '../conformance/input-driver.ts';
import type { RuleResult } from '../conformance/rule.ts';
import { vhostUserTarget } from '../conformance/vhost-user-target.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

export interface ConformanceArgs {
  socket?: string;
  drive?: string;
  json?: boolean;
  only?: string;
  'timeout-ms'?: string;
  'wait-ms'?: string;
}

/** Exit statuses: every rule PASS, WARN or SKIP; some rule FAIL; bad command line; the harness failed. */
export const EXIT = { PASS: 0, FAIL: 1, USAGE: 2, HARNESS: 3 } as const;

export const command = defineCommand({
  usage:
    "vgpio conformance --socket PATH [--drive 'CMD {line} {value}'] [--only PREFIX,...] [--timeout-ms N] [--wait-ms N] [--json]",
  help: `Checks a vhost-user-gpio back-end against virtio 1.2 §5.18, rule by rule, each on a fresh connection.
The run changes the target's line 0 (direction, value, interrupt type) and drives its input:
use a device nothing else is using. FAIL means a MUST was broken, WARN a SHOULD (or text without
a MUST), SKIP that the device lacks a feature or no input can be driven.

Options:
  --socket PATH      the back-end's vhost-user socket
  --drive CMD        command that sets an input ({line}, {value} substituted); default: vgpio's control endpoint
  --only PREFIX,...  run only the rules whose ids start with one of the prefixes
  --timeout-ms N     reply timeout per request (default 2000)
  --wait-ms N        how long to wait for the socket to listen (again) before each rule (default 5000)
  --json             results as JSON

Exit status: 0 no rule failed, 1 some rule failed, 2 usage error, 3 harness error (back-end not
reachable, connection set-up failed, or the --drive command failed).`,
  options: {
    socket: { type: 'string' },
    drive: { type: 'string' },
    json: { type: 'boolean' },
    only: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'wait-ms': { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  run: (values) => conformance(values),
});

const positiveMs = (s: string | undefined, flag: string, dflt: number): number => {
  const n = Number(s ?? dflt);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive number of milliseconds`);
  return n;
};

/** `vgpio conformance --socket PATH`: checks a vhost-user-gpio back-end against the spec. */
export async function conformance(a: ConformanceArgs): Promise<number> {
  if (!a.socket) throw new UsageError('--socket PATH is required');
  const socket = a.socket;
  const replyMs = positiveMs(a['timeout-ms'], '--timeout-ms', 2000);
  const waitMs = positiveMs(a['wait-ms'], '--wait-ms', 5000);
  const only = a.only?.split(',').filter(Boolean);
  const rules = selectRules(only);
  if (rules.length === 0)
    throw new UsageError(
      `--only ${a.only ?? ''} matches no rule; rules: ${selectRules()
        .map((r) => r.id)
        .join(', ')}`,
    );
  if (!a.json)
    process.stdout.write(
      `vgpio conformance: ${socket}\n` +
        `note: this run changes the target's line state (line 0: direction, value, IRQ type; its input level)\n`,
    );
  else process.stderr.write(`vgpio conformance: note: this run changes the line state of ${socket}\n`);
  let drive: InputDriver | null = null;
  let results: RuleResult[] = [];
  let harness: HarnessError | null = null;
  try {
    drive = a.drive ? new CommandInputDriver(a.drive) : await ControlInputDriver.forSocket(socket);
    if (!a.json) process.stdout.write(`inputs driven by ${drive?.description ?? 'nothing'}\n\n`);
    results = await runConformance({
      connect: vhostUserTarget(socket, { replyMs, waitMs }),
      drive,
      replyMs,
      rules,
    });
  } catch (e) {
    if (!(e instanceof HarnessError)) throw e;
    harness = e;
    results = e.results;
  } finally {
    drive?.close();
  }
  const during = harness?.rule ? ` during ${harness.rule}` : '';
  const harnessError = harness && `${during.trimStart()}${during ? ': ' : ''}${harness.message}`;
  if (a.json)
    process.stdout.write(
      JSON.stringify({ socket, drive: drive?.description ?? null, harnessError, results }, null, 2) + '\n',
    );
  else if (results.length > 0) process.stdout.write(formatResults(results));
  if (harnessError) {
    process.stderr.write(`vgpio conformance: harness error${during}: ${harness?.message}\n`);
    return EXIT.HARNESS;
  }
  return results.some((r) => r.outcome === 'FAIL') ? EXIT.FAIL : EXIT.PASS;
}
