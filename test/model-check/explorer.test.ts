// The explorer itself, on systems whose state spaces are known by hand: it visits each state
// once, reports "closed" only when nothing is left, stops at the bound otherwise, and returns a
// shortest counterexample — by cloning and by replay alike.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explore, formatTrace, type ExploredSystem, type Violation } from './explorer.ts';

/** Two counters a, b in 0..n-1; `inc a`, `inc b`; a violation when a = b = bad (if given). */
class Counters implements ExploredSystem {
  constructor(
    private readonly n: number,
    private readonly bad: number | null,
    private readonly cloning: boolean,
    public a = 0,
    public b = 0,
  ) {}
  enabled(): string[] {
    return [...(this.a < this.n - 1 ? ['inc a'] : []), ...(this.b < this.n - 1 ? ['inc b'] : [])];
  }
  apply(action: string): void {
    if (action === 'inc a') this.a++;
    else if (action === 'inc b') this.b++;
    else throw new Error(action);
  }
  violations(): Violation[] {
    return this.a === this.bad && this.b === this.bad
      ? [{ invariant: 'diagonal', detail: `a = b = ${this.bad}` }]
      : [];
  }
  key(): string {
    return `${this.a},${this.b}`;
  }
  label(action: string): string {
    return action;
  }
  get clone(): (() => ExploredSystem) | undefined {
    return this.cloning ? () => new Counters(this.n, this.bad, true, this.a, this.b) : undefined;
  }
}

for (const cloning of [true, false]) {
  const how = cloning ? 'cloning' : 'replaying';
  test(`${how}: every state once, closed when the space is exhausted`, async () => {
    const r = await explore(async () => new Counters(4, null, cloning), { depth: 20 });
    assert.equal(r.states, 16);
    // Each state but the last row/column has its edges: 2 * 4 * 3 transitions.
    assert.equal(r.transitions, 24);
    assert.equal(r.closed, true);
    assert.equal(r.depthCompleted, 7); // the frontier empties after the deepest state (3,3) at depth 6
    assert.equal(r.counterexample, null);
  });

  test(`${how}: the bound stops the search, and is not reported as closed`, async () => {
    const r = await explore(async () => new Counters(10, null, cloning), { depth: 3 });
    assert.equal(r.states, 10); // states at distance <= 3 from (0,0)
    assert.equal(r.closed, false);
    assert.equal(r.depthCompleted, 3);
  });

  test(`${how}: a shortest counterexample, readable`, async () => {
    const r = await explore(async () => new Counters(5, 2, cloning), { depth: 10 });
    assert.ok(r.counterexample);
    assert.equal(r.counterexample.actions.length, 4);
    assert.equal(r.counterexample.violation.invariant, 'diagonal');
    assert.match(
      formatTrace(r.counterexample.steps),
      /^inc [ab] → inc [ab] → inc [ab] → inc [ab] \(a = b = 2\)$/,
    );
  });
}
