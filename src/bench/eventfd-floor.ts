import { benchTool } from './bench-tool.ts';
import { execFile, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FdPoller, closeFd, eventfd, eventfdRead, eventfdWrite, getCpu } from '../native/index.ts';
import { summarize, type LatencySummary } from './percentiles.ts';

// The child is this file's sibling: TypeScript through tsx in the repository, compiled JS in dist/.
const fromSource = import.meta.url.endsWith('.ts');
const echoChild = fileURLToPath(new URL(`./eventfd-echo.${fromSource ? 'ts' : 'js'}`, import.meta.url));

export interface FloorResult extends LatencySummary {
  childCpu: number;
  parentCpu: number;
}

/**
 * The floor under any vhost-user round trip: an eventfd ping-pong between this process and a
 * child, each side woken through the same uv_poll path the transports use.
 */
export async function eventfdFloor(iterations: number, childCpu?: number): Promise<FloorResult> {
  const ping = eventfd(0);
  const pong = eventfd(0);
  const child = fork(echoChild, [], {
    execArgv: fromSource ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'inherit', 'inherit', ping, pong, 'ipc'],
    env: { ...process.env, VGPIO_ECHO_CPU: childCpu === undefined ? '' : String(childCpu) },
  });
  try {
    const cpu = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { cpu: number }) => resolve(m.cpu));
      child.once('exit', (code) => reject(new Error(`eventfd echo child exited ${code}`)));
    });
    const samples: number[] = [];
    await new Promise<void>((resolve) => {
      let t0 = 0n;
      let i = 0;
      const poller = new FdPoller(pong, (_err, readable) => {
        if (!readable) return;
        while (eventfdRead(pong) !== null);
        if (i++ > 0) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
        if (samples.length >= iterations) {
          poller.close();
          return resolve();
        }
        t0 = process.hrtime.bigint();
        eventfdWrite(ping, 1n);
      });
      poller.start(true, false);
      eventfdWrite(pong, 1n); // first wake-up starts the loop
    });
    return { ...summarize(samples), childCpu: cpu, parentCpu: getCpu() };
  } finally {
    child.kill();
    closeFd(ping);
    closeFd(pong);
  }
}

/** The C floor's program, built by node-gyp beside the addon (binding.gyp target vgpio_eventfd_floor). */
export const cFloorProgram: string = benchTool('vgpio_eventfd_floor');

/**
 * The same ping-pong between two C processes blocking in read(2) (native/eventfd-floor.c): what
 * a back-end and a front-end written in C could reach on this machine. `cpus`: parent and child CPU.
 */
export async function cEventfdFloor(iterations: number, cpus: [number, number] | null): Promise<FloorResult> {
  if (!existsSync(cFloorProgram))
    throw new Error(`${cFloorProgram} is not built (npm run install builds it with the addon)`);
  const args = [String(iterations), ...(cpus ? cpus.map(String) : [])];
  const out = await new Promise<string>((resolve, reject) =>
    execFile(cFloorProgram, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    ),
  );
  const lines = out.trim().split('\n');
  const placed = /^cpu (\d+) (\d+)$/.exec(lines.pop() ?? '');
  if (!placed || lines.length !== iterations) throw new Error(`unexpected output from ${cFloorProgram}`);
  return {
    ...summarize(lines.map((l) => Number(l) / 1000)),
    parentCpu: Number(placed[1]),
    childCpu: Number(placed[2]),
  };
}
