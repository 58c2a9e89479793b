import { benchBackend, formatBench } from '../bench/backend-bench.ts';
import { CommandInputDriver, ControlInputDriver, type InputDriver } from '../conformance/input-driver.ts';
import { ControlClient } from '../control/control-client.ts';
import { setAffinity } from '../native/index.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

export interface BenchArgs {
  socket?: string;
  iterations?: string;
  drive?: string;
  cpu?: string;
  'floor-cpu'?: string;
  json?: boolean;
}

const cpuArg = (s: string | undefined, flag: string): number | undefined => {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a CPU number`);
  return n;
};

export const command = defineCommand({
  usage: 'vgpio bench --socket PATH [--iterations N] [--drive CMD] [--cpu N] [--floor-cpu N] [--json]',
  help: `Measures a vhost-user-gpio back-end: GET_VALUE round trip, requests/s with 1 and 64 lines in flight,
interrupt latency (when inputs can be driven), and the eventfd ping-pong floor in the same run.

Options:
  --socket PATH     the back-end's vhost-user socket
  --iterations N    round trips per measurement (default 5000)
  --drive CMD       command that sets an input ({line}, {value} substituted); default: vgpio's control endpoint
  --cpu N           pin this process to CPU N
  --floor-cpu N     CPU for the eventfd floor's peer (default --cpu)
  --json            results as JSON`,
  options: {
    socket: { type: 'string' },
    iterations: { type: 'string' },
    drive: { type: 'string' },
    cpu: { type: 'string' },
    'floor-cpu': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: { min: 0, max: 0 },
  run: (values) => bench(values),
});

/** `vgpio bench --socket PATH`: latency and throughput of a back-end, and the eventfd floor. */
export async function bench(a: BenchArgs): Promise<number> {
  if (!a.socket) throw new UsageError('--socket PATH is required');
  const iterations = Number(a.iterations ?? 5000);
  if (!Number.isInteger(iterations) || iterations < 1)
    throw new UsageError('--iterations must be a positive integer');
  const cpu = cpuArg(a.cpu, '--cpu');
  if (cpu !== undefined) setAffinity([cpu]);
  let backendPid: number | undefined;
  let drive: InputDriver | null = null;
  try {
    if (a.drive) drive = new CommandInputDriver(a.drive);
    else {
      drive = await ControlInputDriver.forSocket(a.socket);
      if (drive) {
        const c = await ControlClient.connect(a.socket);
        const r = await c.request({ op: 'status' });
        c.close();
        if (r.ok) backendPid = r.status?.pid;
      }
    }
    const result = await benchBackend({
      socket: a.socket,
      iterations,
      drive,
      backendPid,
      floorCpu: cpuArg(a['floor-cpu'], '--floor-cpu') ?? cpu,
    });
    process.stdout.write(a.json ? JSON.stringify(result, null, 2) + '\n' : formatBench(result, a.socket));
    return 0;
  } finally {
    drive?.close();
  }
}
