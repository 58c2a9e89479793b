// The bounded exhaustive check of the real GpioDevice, VirtioGpioDevice and GpioDriver over the
// loopback (issue 14, items 1-3): every interleaving of the enabled actions within each run's
// depth, every invariant of invariants.ts after every step. States, transitions and time are
// printed; `npm run model-check -- --depth N --lines L` goes deeper.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ciRuns, describeResult, runCoverage } from './coverage.ts';
import { installDeferredSteps } from './deferred-steps.ts';
import { formatTrace } from './explorer.ts';
import { RealSystem, defaultRealOptions } from './real-system.ts';
import { loadSubjects } from './subjects.ts';

test('replay is deterministic: the same actions reach the same state key', async () => {
  const sub = await loadSubjects();
  const uninstall = installDeferredSteps();
  try {
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let walk = 0; walk < 20; walk++) {
      const a = await RealSystem.create(sub, defaultRealOptions);
      const path: string[] = [];
      const keys: string[] = [];
      for (let i = 0; i < 14; i++) {
        const actions = a.enabled();
        const act = actions[next(actions.length)];
        await a.apply(act);
        assert.deepEqual(a.violations(), [], `after ${path.join(' → ')} → ${act}`);
        path.push(act);
        keys.push(a.key());
      }
      const b = await RealSystem.create(sub, defaultRealOptions);
      for (let i = 0; i < path.length; i++) {
        await b.apply(path[i]);
        assert.equal(b.key(), keys[i], `diverged at step ${i}: ${path.slice(0, i + 1).join(' → ')}`);
      }
    }
  } finally {
    uninstall();
  }
});

for (const run of ciRuns) {
  test(`exhaustive: ${run.name}, depth ${run.depth}`, async () => {
    const r = await runCoverage(run);
    console.log(describeResult(run.name, run.depth, r));
    assert.equal(
      r.counterexample,
      null,
      r.counterexample
        ? `${r.counterexample.violation.invariant}: ${formatTrace(r.counterexample.steps)}`
        : '',
    );
    assert.ok(r.closed || r.depthCompleted === run.depth, 'every state within the bound was expanded');
    assert.equal(r.truncated, false);
  });
}
