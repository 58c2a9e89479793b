import { benchBackends, formatBench, type BenchTarget, type PlacementMode } from '../bench/backend-bench.ts';
import { cFrontendBuilt, cFrontendProgram } from '../bench/bench-frontend-c.ts';
import type { FrontendKind } from '../bench/bench-frontend.ts';
import { socketOwnerPid } from '../bench/process-stats.ts';
import { CommandInputDriver, ControlInputDriver } from '../conformance/input-driver.ts';
import { ControlClient } from '../control/control-client.ts';
import { setAffinity } from '../native/index.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

export interface BenchArgs {
  socket?: string[];
  iterations?: string;
  'in-flight'?: string;
  rounds?: string;
  placement?: string;
  drive?: string;
  cpu?: string;
  frontend?: string;
  spin?: boolean;
  'event-idx'?: boolean;
  json?: boolean;
}

const positiveInt = (s: string, flag: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer (got ${s})`);
  return n;
};

export const command = defineCommand({
  usage:
    'vgpio bench --socket PATH [--socket PATH2 ...] [--iterations N] [--in-flight 1,8,64] [--rounds N] [--placement same|split | --cpu N] [--frontend c|node] [--spin] [--event-idx] [--drive CMD] [--json]',
  help: `Measures vhost-user-gpio back-ends: GET_VALUE round trip, requests/s with 1, 8 and 64 lines in
flight, CPU time per request on both sides, interrupt latency (when inputs can be driven), and the
eventfd ping-pong floors of the same run: two C processes blocking in read(2), and two Node
processes woken through uv_poll as the transports are. Several --socket back-ends are measured
interleaved (each measurement in --rounds slices, every back-end in turn), so they share the
machine's noise and can be compared side by side.

Options:
  --socket PATH        a back-end's vhost-user socket (repeat to compare back-ends)
  --iterations N       round trips per latency measurement and requests per rate (default 5000)
  --in-flight LIST     lines in flight of the rate measurements (default 1,8,64)
  --rounds N           interleaving slices per measurement (default 5)
  --placement MODE     same: this process, every back-end and both floors on one CPU;
                       split: this process on one CPU, back-ends and the floors' peers on another
                       (back-ends are found by their socket and pinned with taskset, then restored)
  --cpu N              only pin this process (and the front-end) to CPU N (no back-end pinning)
  --frontend KIND      c: requests sent by an independent C front-end (vgpio_bench_frontend,
                       built with the addon), so the figures are the back-end's; node: by our
                       Node driver, which costs more CPU per request than a back-end should
                       (default: c when built, else node with a notice)
  --spin               C front-end: poll the used ring instead of sleeping in read(2); with
                       --placement split only (on the back-end's CPU the spin starves it)
  --event-idx          C front-end: negotiate VIRTIO_F_EVENT_IDX
  --drive CMD          command that sets an input ({line}, {value} substituted); default: vgpio's
                       control endpoint PATH.ctl when there is one
  --json               results as JSON`,
  options: {
    socket: { type: 'string', multiple: true },
    iterations: { type: 'string' },
    'in-flight': { type: 'string' },
    rounds: { type: 'string' },
    placement: { type: 'string' },
    drive: { type: 'string' },
    cpu: { type: 'string' },
    frontend: { type: 'string' },
    spin: { type: 'boolean' },
    'event-idx': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  positionals: { min: 0, max: 0 },
  run: (values) => bench(values),
});

async function targetFor(socket: string, drive: string | undefined): Promise<BenchTarget> {
  if (drive) return { socket, drive: new CommandInputDriver(drive), backendPid: socketOwnerPid(socket) };
  const control = await ControlInputDriver.forSocket(socket);
  let backendPid = socketOwnerPid(socket);
  if (control && backendPid === null) {
    const c = await ControlClient.connect(socket);
    const r = await c.request({ op: 'status' });
    c.close();
    if (r.ok) backendPid = r.status?.pid ?? null;
  }
  return { socket, drive: control, backendPid };
}

function chooseFrontend(asked: string | undefined): FrontendKind {
  if (asked !== undefined && asked !== 'c' && asked !== 'node')
    throw new UsageError(`--frontend must be c or node (got ${asked})`);
  if (asked === 'node') return 'node';
  if (cFrontendBuilt()) return 'c';
  if (asked === 'c')
    throw new UsageError(`--frontend c: ${cFrontendProgram} is not built (npm run install builds it)`);
  process.stderr.write(
    `vgpio bench: ${cFrontendProgram} is not built (npm run install builds it): measuring through the Node front-end, whose own CPU cost per request is in the figures\n`,
  );
  return 'node';
}

/** `vgpio bench --socket PATH...`: latency, throughput and CPU cost of back-ends, and the floors. */
export async function bench(a: BenchArgs): Promise<number> {
  const sockets = a.socket ?? [];
  if (sockets.length === 0) throw new UsageError('--socket PATH is required');
  const iterations = positiveInt(a.iterations ?? '5000', '--iterations');
  const rounds = positiveInt(a.rounds ?? '5', '--rounds');
  const inFlight = (a['in-flight'] ?? '1,8,64').split(',').map((x) => positiveInt(x, '--in-flight'));
  if (a.placement !== undefined && a.placement !== 'same' && a.placement !== 'split')
    throw new UsageError(`--placement must be same or split (got ${a.placement})`);
  if (a.placement !== undefined && a.cpu !== undefined)
    throw new UsageError('--placement and --cpu are exclusive (--placement pins this process too)');
  if (a.cpu !== undefined) {
    const cpu = Number(a.cpu);
    if (!Number.isInteger(cpu) || cpu < 0) throw new UsageError('--cpu must be a CPU number');
    setAffinity([cpu]);
  }
  const frontend = chooseFrontend(a.frontend);
  if (frontend === 'node' && (a.spin || a['event-idx']))
    throw new UsageError('--spin and --event-idx are options of the C front-end (--frontend c)');
  const targets: BenchTarget[] = [];
  try {
    for (const s of sockets) targets.push(await targetFor(s, a.drive));
    const result = await benchBackends({
      targets,
      iterations,
      inFlight,
      rounds,
      placement: (a.placement as PlacementMode | undefined) ?? null,
      frontend,
      spin: a.spin ?? false,
      eventIdx: a['event-idx'] ?? false,
    });
    process.stdout.write(a.json ? JSON.stringify(result, null, 2) + '\n' : formatBench(result));
    return 0;
  } finally {
    for (const t of targets) t.drive?.close();
  }
}
