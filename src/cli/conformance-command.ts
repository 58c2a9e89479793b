import { CommandInputDriver, ControlInputDriver, type InputDriver } from '../conformance/input-driver.ts';
import { formatResults, runConformance } from '../conformance/conformance-runner.ts';
import { VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

export interface ConformanceArgs {
  socket?: string;
  drive?: string;
  json?: boolean;
  only?: string;
  'timeout-ms'?: string;
}

export const command = defineCommand({
  usage:
    "vgpio conformance --socket PATH [--drive 'CMD {line} {value}'] [--only PREFIX,...] [--timeout-ms N] [--json]",
  help: `Checks a vhost-user-gpio back-end against virtio 1.2 §5.18, rule by rule, each on a fresh connection.

Options:
  --socket PATH      the back-end's vhost-user socket
  --drive CMD        command that sets an input ({line}, {value} substituted); default: vgpio's control endpoint
  --only PREFIX,...  run only the rules whose ids start with one of the prefixes
  --timeout-ms N     reply timeout per request (default 2000)
  --json             results as JSON`,
  options: {
    socket: { type: 'string' },
    drive: { type: 'string' },
    json: { type: 'boolean' },
    only: { type: 'string' },
    'timeout-ms': { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  run: (values) => conformance(values),
});

/** `vgpio conformance --socket PATH`: checks a vhost-user-gpio back-end against the spec. */
export async function conformance(a: ConformanceArgs): Promise<number> {
  if (!a.socket) throw new UsageError('--socket PATH is required');
  const socket = a.socket;
  const timeoutMs = Number(a['timeout-ms'] ?? 2000);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new UsageError('--timeout-ms must be a positive number');
  let drive: InputDriver | null = a.drive
    ? new CommandInputDriver(a.drive)
    : await ControlInputDriver.forSocket(socket);
  try {
    const results = await runConformance({
      connect: () => VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO, { timeoutMs }),
      drive,
      replyMs: timeoutMs,
      only: a.only?.split(','),
    });
    if (a.json)
      process.stdout.write(
        JSON.stringify({ socket, drive: drive?.description ?? null, results }, null, 2) + '\n',
      );
    else {
      process.stdout.write(
        `vgpio conformance: ${socket} (inputs driven by ${drive?.description ?? 'nothing'})\n\n`,
      );
      process.stdout.write(formatResults(results));
    }
    return results.some((r) => r.outcome === 'FAIL') ? 1 : 0;
  } finally {
    drive?.close();
    drive = null;
  }
}
