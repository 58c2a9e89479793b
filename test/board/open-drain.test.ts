// Open-drain readback on a shared net, with the TypeScript driver over the loopback board: a guest
// output on the net reads the wire, not what it drives (another output holding the net low reads 0
// on this one too), its interrupts-free level changes are reported once each; a push-pull wire's
// output keeps reading its own level.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLoopbackBoard } from '../../src/compose/loopback-board.ts';

test('two outputs on a shared net: one drives 0, the other (driving 1) reads 0 by GET_VALUE', async (t) => {
  const lb = await openLoopbackBoard({
    devices: [
      { name: 'a', lines: 2, names: ['sda', 'spare'] },
      { name: 'b', lines: 2, names: ['sda', 'spare'] },
    ],
    nets: [{ lines: ['a:sda', 'b:sda'], pull: 'up' }],
  });
  t.after(() => lb.close());
  const a = await lb.chips
    .get('a')!
    .chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 1 } } });
  const b = await lb.chips
    .get('b')!
    .chip.requestLines({ lines: { 0: { direction: 'output', outputValue: 1 } } });
  assert.equal(await a.getValue(0), 1, 'both let go: the pull-up');
  assert.equal(await b.getValue(0), 1);

  await b.setValue(0, 0);
  assert.equal(await b.getValue(0), 0, 'b drives 0 and reads 0');
  assert.equal(await a.getValue(0), 0, 'a drives 1 but the wire is low: a reads 0');
  assert.equal(lb.chips.get('a')!.lines.output(0), 1, 'a still drives 1 (what the control op output says)');

  await a.setValue(0, 0);
  await b.setValue(0, 1);
  assert.equal(await b.getValue(0), 0, 'now a holds it low: b reads 0 while driving 1');
  await a.setValue(0, 1);
  assert.deepEqual([await a.getValue(0), await b.getValue(0)], [1, 1], 'both let go again');

  // The device model's line state follows the wire too (status "level").
  await b.setValue(0, 0);
  assert.equal(lb.chips.get('a')!.device.snapshot()[0].value, 0);
});

test('an open-drain output sees each change of the wire once (no repeated level reports)', async (t) => {
  const lb = await openLoopbackBoard({
    devices: [{ name: 'd', lines: 2 }],
    nets: [{ lines: ['d:0', 'd:1'] }],
  });
  t.after(() => lb.close());
  const { lines, device, chip } = lb.chips.get('d')!;
  const reported: string[] = [];
  lines.onChange((c) => reported.push(`${c.line}:${c.level}`));
  const outputs: string[] = [];
  const stop = device.events.subscribe((e) => {
    if (e.type === 'output' || e.type === 'input') outputs.push(`${e.type} ${e.line} ${e.from}->${e.to}`);
  });
  t.after(stop);
  const req = await chip.requestLines({
    lines: { 0: { direction: 'output', outputValue: 1 }, 1: { direction: 'output', outputValue: 1 } },
  });
  reported.length = 0;
  outputs.length = 0;
  await req.setValue(0, 0);
  // Line 0 drives the net low: both lines read 0, each reported exactly once.
  assert.deepEqual(reported.sort(), ['0:0', '1:0']);
  assert.deepEqual(outputs.sort(), ['output 0 1->0', 'output 1 1->0']);
  reported.length = 0;
  await req.setValue(1, 0);
  assert.deepEqual(reported, [], 'already low: nothing changes');
  await req.setValue(0, 1);
  assert.deepEqual(reported, [], 'line 1 still holds it low');
  await req.setValue(1, 1);
  assert.deepEqual(reported.sort(), ['0:1', '1:1']);
});

test('push-pull: an output wired to an input reads its own driven level, as before', async (t) => {
  const lb = await openLoopbackBoard({
    devices: [{ name: 'd', lines: 3, pull: { '2': 'down' } }],
    wires: [{ from: 'd:0', to: 'd:1' }],
  });
  t.after(() => lb.close());
  const req = await lb.chips.get('d')!.chip.requestLines({
    lines: {
      0: { direction: 'output', outputValue: 1 },
      1: { direction: 'input' },
      2: { direction: 'output' },
    },
  });
  assert.equal(await req.getValue(0), 1);
  assert.equal(await req.getValue(1), 1);
  await req.setValue(2, 1);
  assert.equal(await req.getValue(2), 1, 'a pulled-down line driven 1 as an output reads 1 (not a net)');
  assert.equal(lb.chips.get('d')!.lines.isOpenDrain(0), false);
});
