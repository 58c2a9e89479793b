// The counter-model (issue 14, item 4): the V3 design, where mask/unmask are flags the device
// learns of only at a later sync, lets the device raise a line whose one-shot handler is still
// running. The explorer must find that — the checker is not vacuous — and print the shortest
// trace. The review's proposed fix (the device waits for a REQ_IRQ_ACK sent after sync) is
// explored exhaustively too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeResult } from './coverage.ts';
import { explore, formatTrace } from './explorer.ts';
import { Invariant } from './invariants.ts';
import { V3Model } from './v3-model.ts';

for (const lines of [1, 2]) {
  test(`V3 (${lines} line${lines > 1 ? 's' : ''}): the handler is re-entered, shortest trace`, async () => {
    const r = await explore(async () => V3Model.create({ lines, ack: false }), { depth: 20 });
    assert.ok(r.counterexample, 'the V3 design must show the race');
    const trace = formatTrace(r.counterexample.steps);
    console.log(`V3 counterexample: ${trace}`);
    assert.equal(r.counterexample.violation.invariant, Invariant.handlerExclusive);
    assert.equal(
      trace,
      'edge L0 → irq L0 → handler L0 start → mask(flag) → edge L0 → irq L0 → handler L0 start (RE-ENTERED)',
    );
  });

  test(`V3 + REQ_IRQ_ACK after sync (${lines} line${lines > 1 ? 's' : ''}): no re-entry in any reachable state`, async () => {
    const r = await explore(async () => V3Model.create({ lines, ack: true }), { depth: 40 });
    console.log(describeResult(`V3 + ack, ${lines} line(s)`, 40, r));
    assert.equal(r.counterexample, null);
    assert.equal(r.closed, true, 'the whole state space is explored');
  });
}
