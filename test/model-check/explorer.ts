/**
 * A depth-bounded, exhaustive breadth-first explorer over any system whose steps are named
 * actions. Every reachable state within the bound is visited once, at its shortest depth, so
 * the first violation found comes with a shortest trace.
 *
 * Restoring a state: a system either clones itself (plain-data models) or is rebuilt from its
 * initial state by replaying the action path that reached it (the real device and driver,
 * whose promises and closures cannot be copied).
 */

export interface Violation {
  /** Which invariant broke (one of the names in invariants.ts). */
  invariant: string;
  detail: string;
}

export interface ExploredSystem {
  /** The actions enabled in the current state, by name; a name means the same step on every replay. */
  enabled(): string[];
  /** Performs one action and lets everything it caused settle. */
  apply(action: string): Promise<void> | void;
  /** Invariants broken by the last step (checked after every step). */
  violations(): Violation[];
  /** Canonical encoding of everything that decides the future: equal keys, equal futures. */
  key(): string;
  /** How the last step reads in a trace (an action may print as several arrows, e.g. `a → b`). */
  label(action: string): string;
  /** Present when the state can be copied; else the explorer replays. */
  clone?(): ExploredSystem;
  dispose?(): void;
}

export interface ExploreOptions {
  depth: number;
  /** Stop after this many states (a guard for the CLI); undefined: no limit. */
  maxStates?: number;
  /**
   * Replayed systems just discovered are kept live, up to this many per level, so their own
   * expansion starts without a replay (default 1000; memory for speed).
   */
  keepLive?: number;
}

export interface Counterexample {
  actions: string[];
  /** Readable steps, one per action label; the last carries the violation's detail. */
  steps: string[];
  violation: Violation;
}

export interface ExploreResult {
  states: number;
  transitions: number;
  /** Steps executed in total, replays included (the cost of restoring by replay). */
  stepsExecuted: number;
  /** Deepest level whose states were all expanded. */
  depthCompleted: number;
  /** Every reachable state was found before the bound (the frontier ran empty). */
  closed: boolean;
  truncated: boolean;
  ms: number;
  counterexample: Counterexample | null;
}

interface Node {
  parent: number;
  action: string;
}

export async function explore(
  create: () => Promise<ExploredSystem>,
  opts: ExploreOptions,
): Promise<ExploreResult> {
  const t0 = performance.now();
  const nodes: Node[] = [{ parent: -1, action: '' }];
  const visited = new Set<string>();
  let transitions = 0;
  let stepsExecuted = 0;
  let truncated = false;

  const pathOf = (id: number): string[] => {
    const out: string[] = [];
    for (let n = id; n > 0; n = nodes[n].parent) out.push(nodes[n].action);
    return out.reverse();
  };
  const restore = async (path: readonly string[]): Promise<ExploredSystem> => {
    const s = await create();
    for (const a of path) {
      await s.apply(a);
      stepsExecuted++;
    }
    return s;
  };
  const result = (depthCompleted: number, closed: boolean, cx: Counterexample | null): ExploreResult => ({
    states: visited.size,
    transitions,
    stepsExecuted,
    depthCompleted,
    closed,
    truncated,
    ms: Math.round(performance.now() - t0),
    counterexample: cx,
  });

  const root = await create();
  visited.add(root.key());
  const initial = root.violations();
  if (initial.length > 0) return result(0, false, { actions: [], steps: [], violation: initial[0] });
  let frontier: Array<{ id: number; system: ExploredSystem | null }> = [{ id: 0, system: root }];

  for (let depth = 0; depth < opts.depth; depth++) {
    const next: typeof frontier = [];
    let live = 0;
    const expandNext = depth + 1 < opts.depth;
    for (const { id, system } of frontier) {
      const path = pathOf(id);
      const here = system ?? (await restore(path));
      const actions = here.enabled();
      for (let i = 0; i < actions.length; i++) {
        const a = actions[i];
        const last = i === actions.length - 1;
        const s = here.clone ? here.clone() : last ? here : await restore(path);
        await s.apply(a);
        stepsExecuted++;
        transitions++;
        const v = s.violations();
        if (v.length > 0) {
          const actionsTaken = [...path, a];
          return result(depth, false, {
            actions: actionsTaken,
            steps: await readable(create, actionsTaken, v[0]),
            violation: v[0],
          });
        }
        const k = s.key();
        if (!visited.has(k)) {
          visited.add(k);
          nodes.push({ parent: id, action: a });
          // Plain-data systems keep their state; replayed ones are kept while there is room,
          // else rebuilt when expanded.
          const keep = s.clone !== undefined || (expandNext && live < (opts.keepLive ?? 1000));
          if (keep && !s.clone) live++;
          next.push({ id: nodes.length - 1, system: keep ? s : null });
          if (opts.maxStates !== undefined && visited.size >= opts.maxStates) {
            truncated = true;
            return result(depth, false, null);
          }
          if (keep) continue;
        }
        s.dispose?.();
      }
    }
    frontier = next;
    if (frontier.length === 0) return result(depth + 1, true, null);
  }
  return result(opts.depth, false, null);
}

/** Replays a path and reads each step's label; the last one carries the violated invariant. */
async function readable(
  create: () => Promise<ExploredSystem>,
  actions: readonly string[],
  violation: Violation,
): Promise<string[]> {
  const s = await create();
  const steps: string[] = [];
  for (const a of actions) {
    await s.apply(a);
    steps.push(s.label(a));
  }
  s.dispose?.();
  steps[steps.length - 1] += ` (${violation.detail})`;
  return steps;
}

/** `a → b → c`, the way traces are printed. */
export function formatTrace(steps: readonly string[]): string {
  return steps.join(' → ');
}
