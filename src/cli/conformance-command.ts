import { CommandInputDriver, ControlInputDriver, type InputDriver } from '../conformance/input-driver.ts';
import { formatResults, runConformance } from '../conformance/conformance-runner.ts';
import { VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';
import { UsageError } from './usage-error.ts';

export interface ConformanceArgs {
  socket?: string;
  drive?: string;
  json?: boolean;
  only?: string;
  'timeout-ms'?: string;
}

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
