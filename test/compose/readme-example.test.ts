// The README's loopback example, run as written (only the import path differs), with console.log
// captured so its output can be checked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLoopbackChip } from '../../src/index.ts';

test('README example: a pulse on the button gives rising then falling; the led is on', async (t) => {
  const logged: unknown[][] = [];
  t.mock.method(console, 'log', (...args: unknown[]) => logged.push(args));

  // --- the example, as in the README ---
  const { chip, lines } = await openLoopbackChip({ lines: 8, names: ['button', 'led'] });
  const req = await chip.requestLines({
    consumer: 'demo',
    lines: { 0: { direction: 'input', edge: 'both' }, 1: { direction: 'output', outputValue: 1 } },
  });
  setTimeout(() => lines.pulse(0, 5), 1);
  for await (const ev of req.edgeEvents()) {
    console.log(ev.type, ev.offset, ev.lineSeqno);
    if (ev.lineSeqno === 2) break;
  }
  console.log('led is', lines.output(1));
  await chip.close();
  // --- end of the example ---

  assert.deepEqual(logged, [
    ['rising', 0, 1],
    ['falling', 0, 2],
    ['led is', 1],
  ]);
  assert.deepEqual(chip.driver.names.slice(0, 3), ['button', 'led', '']);
});

test("the README's import specifier 'vgpio' resolves to this package's entry point", async () => {
  const pkg = await import('vgpio');
  assert.equal(pkg.openLoopbackChip, openLoopbackChip);
});
