// The VCD writer on its own: header and value changes as text, chunked output, and the file read
// back by sigrok-cli with the transitions that were fed in.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import type { ControlEvent, LineStatus } from '../../src/control/control-protocol.ts';
import { VcdFile } from '../../src/trace/vcd-file.ts';
import { VcdWriter } from '../../src/trace/vcd-writer.ts';
import { noSigrok, readVcd, transitions } from './sigrok.ts';

const zero = { edges: 0, delivered: 0, latched: 0, coalesced: 0, invalid: 0 };
const line = (n: number, name: string, level: 'high' | 'low' = 'low'): LineStatus => ({
  line: n,
  name,
  direction: 'input',
  level,
  edge: 'both',
  armed: false,
  latched: false,
  counters: zero,
});
const ev = (timeNs: bigint, event: ControlEvent['event'], l: number, extra: Partial<ControlEvent> = {}) => ({
  event,
  timeNs: timeNs.toString(),
  line: l,
  ...extra,
});

describe('VCD writer', () => {
  test('header: timescale 1 ns, three variables per line, initial values at #0; changes at their times', () => {
    let out = '';
    const w = new VcdWriter({
      write: (c) => (out += c),
      devices: [{ scope: 'board a', lines: [line(0, 'led'), line(1, '', 'high'), line(2, 'gpio1')] }],
      startNs: 1000n,
      date: new Date('2026-01-02T03:04:05Z'),
    });
    w.event(0, ev(1500n, 'output', 0, { from: 'low', to: 'high' }));
    w.event(0, ev(1500n, 'armed', 1));
    w.event(0, ev(1700n, 'delivered', 1));
    w.event(0, ev(1800n, 'latched', 1)); // changes no wire
    w.event(0, ev(1900n, 'invalid', 1, { held: false })); // never held: no wire
    w.end(2000n);
    assert.equal(
      out,
      [
        '$date 2026-01-02T03:04:05.000Z $end',
        '$version vgpio $end',
        '$timescale 1 ns $end',
        '$scope module board_a $end',
        '$var wire 1 ! led $end',
        '$var wire 1 " led_armed $end',
        '$var event 1 # led_irq $end',
        '$var wire 1 $ gpio1 $end',
        '$var wire 1 % gpio1_armed $end',
        '$var event 1 & gpio1_irq $end',
        "$var wire 1 ' gpio1_2 $end",
        '$var wire 1 ( gpio1_2_armed $end',
        '$var event 1 ) gpio1_2_irq $end',
        '$upscope $end',
        '$enddefinitions $end',
        '#0',
        '$dumpvars',
        '0!',
        '0"',
        '1$',
        '0%',
        "0'",
        '0(',
        '$end',
        '#500',
        '1!',
        '1%',
        '#700',
        '0%',
        '1&',
        '#1000',
        '',
      ].join('\n'),
    );
  });

  test('output comes in chunks of the given size, and a file stays small in memory', () => {
    const chunks: string[] = [];
    const w = new VcdWriter({
      write: (c) => chunks.push(c),
      devices: [{ scope: 'd', lines: [line(0, 'x')] }],
      startNs: 0n,
      chunkBytes: 256,
    });
    for (let i = 1; i <= 1000; i++)
      w.event(0, ev(BigInt(i * 10), 'input', 0, { to: i % 2 ? 'high' : 'low' }));
    w.end(20000n);
    assert.ok(chunks.length > 20, `${chunks.length} chunks`);
    assert.ok(chunks.slice(0, -1).every((c) => c.length >= 256 && c.length < 512));
    assert.match(chunks.join(''), /#10000\n0!\n#20000\n$/);
  });

  test('sigrok-cli reads the file back with the transitions that were driven', { skip: noSigrok }, () => {
    const dir = mkdtempSync(`${tmpdir()}/vgpio-vcd-`);
    try {
      const path = `${dir}/t.vcd`;
      const f = new VcdFile(path, [{ scope: 'chip', lines: [line(0, 'btn'), line(1, 'led', 'high')] }], 0n);
      const btn = [1, 0, 1, 1, 0]; // a repeated level is no transition
      let t = 0n;
      for (const v of btn) {
        t += 1000n;
        f.event(0, ev(t, 'input', 0, { to: v ? 'high' : 'low' }));
        f.event(0, ev(t + 10n, 'armed', 0));
        f.event(0, ev(t + 500n, 'delivered', 0));
      }
      f.event(0, ev(t + 1000n, 'output', 1, { to: 'low' }));
      f.close(t + 2000n);
      assert.match(readFileSync(path, 'utf8'), /^\$date /);
      const r = readVcd(path);
      assert.deepEqual(r.channels, ['btn', 'btn_armed', 'led', 'led_armed']);
      assert.deepEqual(transitions(r, 'btn'), [0, 1, 0, 1, 0]);
      assert.deepEqual(transitions(r, 'btn_armed'), [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
      assert.deepEqual(transitions(r, 'led'), [1, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
