import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeNames, encodeNames } from '../../src/protocol/names.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

const namesError = (e: unknown): boolean => {
  assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
  assert.equal(e.kind, 'names');
  return true;
};

describe('names block encode', () => {
  test("the spec's example: 10 lines named only at 0, 5 and 7", () => {
    const names = ['LED', '', '', '', '', 'BTN', '', 'Vdd', '', ''];
    const block = encodeNames(names);
    // name0 NUL, four NULs, name5 NUL, NUL, name7 NUL, two NULs
    assert.deepEqual(
      [...block],
      [...ascii('LED'), 0, 0, 0, 0, 0, ...ascii('BTN'), 0, 0, ...ascii('Vdd'), 0, 0, 0],
    );
    assert.equal(block.length, 3 + 1 + 4 + 3 + 1 + 1 + 3 + 1 + 2);
    assert.deepEqual(decodeNames(block, 10), names);
  });

  test('every line named', () => {
    assert.deepEqual([...encodeNames(['a', 'bc', 'Red LED Vdd'])], [...ascii('a\0bc\0Red LED Vdd\0')]);
  });

  test('no names at all is an empty block (gpio_names_size 0)', () => {
    assert.equal(encodeNames(['', '', '']).length, 0);
    assert.equal(encodeNames([]).length, 0);
  });

  test('one named line among unnamed ones still produces one string per line', () => {
    assert.deepEqual([...encodeNames(['', '', 'x'])], [0, 0, 0x78, 0]);
  });

  test('duplicate names are rejected', () => {
    assert.throws(() => encodeNames(['a', 'b', 'a']), namesError);
    assert.throws(() => encodeNames(['same', '', 'same']), namesError);
  });

  test('empty names may repeat (they are not names)', () => {
    assert.deepEqual([...encodeNames(['', 'a', '', ''])], [0, 0x61, 0, 0, 0]);
  });

  test('non-ASCII names are rejected', () => {
    for (const bad of ['café', 'LED\u00a0', '\u{1f4a1}', 'ok\u0080']) {
      assert.throws(() => encodeNames(['fine', bad]), namesError, JSON.stringify(bad));
    }
  });

  test('a name containing NUL is rejected (it would shift every later line)', () => {
    assert.throws(() => encodeNames(['a\0b', 'c']), namesError);
  });

  test('0x01 and 0x7f are the ASCII bounds that are accepted', () => {
    assert.deepEqual([...encodeNames(['\x01', '\x7f'])], [0x01, 0x00, 0x7f, 0x00]);
  });
});

describe('names block decode', () => {
  test('splits into exactly ngpio names', () => {
    assert.deepEqual(decodeNames(Uint8Array.from(ascii('a\0\0c\0')), 3), ['a', '', 'c']);
    assert.deepEqual(decodeNames(Uint8Array.of(0), 1), ['']);
  });

  test('empty block is null', () => {
    assert.equal(decodeNames(new Uint8Array(0), 1), null);
  });

  test('missing final NUL is null', () => {
    assert.equal(decodeNames(Uint8Array.from(ascii('a\0b')), 2), null);
  });

  test('too few strings is null', () => {
    assert.equal(decodeNames(Uint8Array.from(ascii('a\0b\0')), 3), null);
  });

  test('too many strings is null', () => {
    assert.equal(decodeNames(Uint8Array.from(ascii('a\0b\0c\0')), 2), null);
  });

  test('a byte above 0x7f is null', () => {
    assert.equal(decodeNames(Uint8Array.of(0x61, 0x80, 0x00, 0x62, 0x00), 2), null);
    assert.equal(decodeNames(Uint8Array.of(0xff, 0x00), 1), null);
  });

  // Mostly-ASCII blocks with NULs and the odd high byte, so both outcomes are exercised.
  const garbage = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc
      .array(fc.constantFrom(0x00, 0x00, 0x61, 0x62, 0x7f, 0x80), { maxLength: 24 })
      .map((a) => Uint8Array.from(a)),
  );

  /** Whether a block is one Linux would keep: non-empty, NUL-terminated, 7-bit, ngpio strings. */
  const wellFormed = (block: Uint8Array, ngpio: number): boolean =>
    block.length > 0 &&
    block[block.length - 1] === 0 &&
    block.every((c) => c <= 0x7f) &&
    block.filter((c) => c === 0).length === ngpio;

  test('garbage (property): null exactly for a malformed block, else ngpio strings that re-encode to it', () => {
    let kept = 0;
    let refused = 0;
    fc.assert(
      fc.property(garbage, fc.integer({ min: 1, max: 12 }), (block, ngpio) => {
        const names = decodeNames(block, ngpio);
        assert.equal(names === null, !wellFormed(block, ngpio), `block [${block.join(',')}], ngpio ${ngpio}`);
        if (names === null) {
          refused++;
        } else {
          kept++;
          assert.equal(names.length, ngpio);
          assert.deepEqual([...block], ascii(names.map((n) => n + '\0').join('')));
        }
      }),
      { numRuns: 500 },
    );
    assert.ok(kept > 0 && refused > 0, `both outcomes exercised (kept ${kept}, refused ${refused})`);
  });

  test('round trip (property): unique ASCII names', () => {
    const name = fc.string({ unit: fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c)) });
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 16 }), (unique) => {
        const names = unique.map((n, i) => (i % 3 === 1 ? '' : n));
        const block = encodeNames(names);
        if (names.every((n) => n === '')) assert.equal(block.length, 0);
        else assert.deepEqual(decodeNames(block, names.length), names);
      }),
    );
  });
});
