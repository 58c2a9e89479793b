// Seeded bugs (issue 14, item 5): each one-line mutation of the device or driver, applied to a
// copy of src/, makes the explorer fail with a short trace naming the invariant it breaks —
// the invariants are not vacuous, and each has a bug that only it catches first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installDeferredSteps } from './deferred-steps.ts';
import { explore, formatTrace } from './explorer.ts';
import { Invariant } from './invariants.ts';
import { mutantTree } from './mutant-tree.ts';
import { RealSystem, defaultRealOptions } from './real-system.ts';
import { seededBugs } from './seeded-bugs.ts';
import { loadSubjects } from './subjects.ts';

test('every invariant the issue lists has a seeded bug', () => {
  const covered = new Set(seededBugs.map((b) => b.invariant));
  for (const inv of Object.values(Invariant)) {
    if (inv === Invariant.protocol) continue; // the oracle's catch-all, exercised by every run
    assert.ok(covered.has(inv), `no seeded bug for "${inv}"`);
  }
});

for (const bug of seededBugs) {
  test(`caught: ${bug.name}`, async () => {
    const tree = mutantTree(bug);
    const uninstall = installDeferredSteps();
    try {
      const sub = await loadSubjects(tree.root);
      const options = {
        ...defaultRealOptions,
        irqOrder: 'any' as const,
        driverDiagnostics: false,
        ...bug.options,
      };
      const r = await explore(() => RealSystem.create(sub, options), { depth: bug.depth });
      assert.ok(r.counterexample, `not caught within depth ${bug.depth} (${r.states} states)`);
      const trace = formatTrace(r.counterexample.steps);
      console.log(`${bug.invariant}: ${trace}`);
      assert.equal(r.counterexample.violation.invariant, bug.invariant, trace);
      assert.ok(r.counterexample.actions.length <= bug.depth);
    } finally {
      uninstall();
      tree.remove();
    }
  });
}
