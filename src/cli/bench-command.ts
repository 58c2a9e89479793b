import { benchBackend, formatBench } from '../bench/backend-bench.ts';
import { CommandInputDriver, ControlInputDriver, type InputDriver } from '../conformance/input-driver.ts';
import { ControlClient } from '../control/control-client.ts';
import { setAffinity } from '../native/index.ts';
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
