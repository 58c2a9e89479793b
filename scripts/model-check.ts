// Bounded exhaustive exploration of the masked-line interrupt protocol (docs/irq-model.md).
//
//   npm run model-check                      the CI runs (test/model-check/coverage.ts)
//   npm run model-check -- --depth 14 --lines 2 [--types both,high] [--ops retype,disable,dir-none]
//        [--no-values] [--no-rings] [--no-reset] [--irq-order any|fifo]
//        [--max-states N]                   one run of the real device + driver, every action by default
//   npm run model-check -- --model v3|v3-ack [--lines L] [--depth N]   the V3 counter-model
//
// Exits 1 with the shortest trace when an invariant breaks, 2 on bad arguments.
import { parseArgs } from 'node:util';
import { IrqType } from '../src/protocol/constants.ts';
import { ciRuns, describeResult, runCoverage, type CoverageRun } from '../test/model-check/coverage.ts';
import { explore, formatTrace, type ExploreResult } from '../test/model-check/explorer.ts';
import { installDeferredSteps } from '../test/model-check/deferred-steps.ts';
import { RealSystem, defaultRealOptions, type RealSystemOptions } from '../test/model-check/real-system.ts';
import { loadSubjects } from '../test/model-check/subjects.ts';
import { V3Model } from '../test/model-check/v3-model.ts';

const TYPES: Record<string, IrqType> = {
  rising: IrqType.EDGE_RISING,
  falling: IrqType.EDGE_FALLING,
  both: IrqType.EDGE_BOTH,
  high: IrqType.LEVEL_HIGH,
  low: IrqType.LEVEL_LOW,
};
const OPS = ['retype', 'disable', 'dir-none'] as const;

function usage(msg: string): never {
  console.error(`model-check: ${msg}`);
  process.exit(2);
}

function int(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    usage(`--${name} wants an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    depth: { type: 'string' },
    lines: { type: 'string' },
    types: { type: 'string' },
    ops: { type: 'string' },
    'no-values': { type: 'boolean' },
    'no-rings': { type: 'boolean' },
    'no-reset': { type: 'boolean' },
    'irq-order': { type: 'string' },
    'max-states': { type: 'string' },
  },
  strict: true,
});

function report(name: string, depth: number, r: ExploreResult): boolean {
  console.log(describeResult(name, depth, r));
  if (!r.counterexample) return true;
  console.log(`VIOLATED: ${r.counterexample.violation.invariant}`);
  console.log(`  ${formatTrace(r.counterexample.steps)}`);
  return false;
}

const model = a.model ?? 'real';
const custom = Object.keys(a).some((k) => k !== 'model');
let ok = true;
if (model === 'v3' || model === 'v3-ack') {
  const lines = int('lines', a.lines, 1, 1);
  const depth = int('depth', a.depth, 40, 1);
  const r = await explore(async () => V3Model.create({ lines, ack: model === 'v3-ack' }), { depth });
  ok = report(`${model}, ${lines} line(s)`, depth, r);
} else if (model !== 'real') {
  usage(`--model is real, v3 or v3-ack, not ${JSON.stringify(model)}`);
} else if (!custom) {
  for (const run of ciRuns) ok = report(run.name, run.depth, await runCoverage(run)) && ok;
} else {
  const types = (a.types ?? 'both,high')
    .split(',')
    .map((t) => TYPES[t] ?? usage(`unknown type ${JSON.stringify(t)}`));
  const ops = (a.ops ?? OPS.join(','))
    .split(',')
    .filter(Boolean)
    .map((o) => {
      const op = OPS.find((x) => x === o);
      return op ?? usage(`unknown op ${JSON.stringify(o)} (${OPS.join(', ')})`);
    });
  const order = a['irq-order'] ?? 'any';
  if (order !== 'any' && order !== 'fifo') usage(`--irq-order is any or fifo`);
  const options: RealSystemOptions = {
    ...defaultRealOptions,
    lines: int('lines', a.lines, 2, 1),
    types,
    ops,
    values: !a['no-values'],
    rings: !a['no-rings'],
    reset: !a['no-reset'],
    irqOrder: order,
    driverDiagnostics: true,
    staleCheck: true,
  };
  const run: CoverageRun = { name: 'custom', depth: int('depth', a.depth, 8, 1), options };
  console.log(
    `lines ${options.lines}, types ${a.types ?? 'both,high'}, ops enable,${ops.join(',')}` +
      `${options.values ? ', get' : ''}${options.rings ? ', ring stop/start' : ''}${options.reset ? ', reset' : ''}` +
      `, irq order ${order}${options.driverDiagnostics ? ', driver diagnostics' : ''}` +
      `${options.staleCheck ? ', stale-VALID check' : ''}`,
  );
  const maxStates = a['max-states'] === undefined ? undefined : int('max-states', a['max-states'], 0, 1);
  const sub = await loadSubjects();
  const uninstall = installDeferredSteps();
  try {
    const r = await explore(() => RealSystem.create(sub, options), { depth: run.depth, maxStates });
    ok = report(run.name, run.depth, r);
    if (r.truncated) console.log(`stopped at --max-states ${maxStates}: not exhaustive`);
  } finally {
    uninstall();
  }
}
process.exit(ok ? 0 : 1);
