import { IrqType } from '../../src/protocol/constants.ts';
import { explore, type ExploreResult } from './explorer.ts';
import { installDeferredSteps } from './deferred-steps.ts';
import { RealSystem, defaultRealOptions, type RealSystemOptions } from './real-system.ts';
import { loadSubjects, sourceRoot } from './subjects.ts';

/** One bounded exhaustive check: which actions are enabled, how many lines, how deep. */
export interface CoverageRun {
  name: string;
  depth: number;
  options: RealSystemOptions;
}

const base: RealSystemOptions = { ...defaultRealOptions, irqOrder: 'any', staleCheck: true };

/**
 * What CI explores. The deep runs leave out the actions that only multiply states without
 * touching the masked-line race (a second type, GET_VALUE, ring stop/start, reset); the
 * broad run has every action at a smaller depth.
 */
export const ciRuns: readonly CoverageRun[] = [
  {
    name: '2 lines, edges, enable/disable',
    depth: 12,
    options: {
      ...base,
      lines: 2,
      types: [IrqType.EDGE_BOTH],
      ops: ['disable'],
      values: false,
      rings: false,
      reset: false,
    },
  },
  {
    name: '2 lines, level-high, enable/disable',
    depth: 12,
    options: {
      ...base,
      lines: 2,
      types: [IrqType.LEVEL_HIGH],
      ops: ['disable'],
      values: false,
      rings: false,
      reset: false,
    },
  },
  {
    name: '3 lines, edges, enable/disable',
    depth: 8,
    options: {
      ...base,
      lines: 3,
      types: [IrqType.EDGE_BOTH],
      ops: ['disable'],
      values: false,
      rings: false,
      reset: false,
    },
  },
  {
    name: '1 line, every action (two types, change type, direction NONE, GET_VALUE, ring stop/start, reset)',
    depth: 10,
    options: { ...base, lines: 1 },
  },
  {
    name: '2 lines, every action',
    depth: 6,
    options: { ...base, lines: 2 },
  },
];

export async function runCoverage(run: CoverageRun, root: string = sourceRoot): Promise<ExploreResult> {
  const sub = await loadSubjects(root);
  const uninstall = installDeferredSteps();
  try {
    return await explore(() => RealSystem.create(sub, run.options), { depth: run.depth });
  } finally {
    uninstall();
  }
}

export function describeResult(name: string, depth: number, r: ExploreResult): string {
  const bound = r.closed
    ? `closed at depth ${r.depthCompleted} (every reachable state)`
    : `depth ${r.depthCompleted}/${depth}`;
  return `${name}: ${bound}, ${r.states} states, ${r.transitions} transitions, ${r.stepsExecuted} steps run (replays included), ${(r.ms / 1000).toFixed(1)} s`;
}
