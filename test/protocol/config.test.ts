import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeConfig, encodeConfig } from '../../src/protocol/config.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import { CONFIG_SIZE } from '../../src/protocol/constants.ts';

const protocolError =
  (kind: ProtocolError['kind']) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    return true;
  };

describe('config space (le16 ngpio, 2 bytes padding, le32 gpio_names_size)', () => {
  test('encodes exact 8 bytes with zero padding', () => {
    const b = encodeConfig({ ngpio: 0x1234, namesSize: 0xa1b2c3d4 });
    assert.equal(b.length, CONFIG_SIZE);
    assert.deepEqual([...b], [0x34, 0x12, 0x00, 0x00, 0xd4, 0xc3, 0xb2, 0xa1]);
  });

  test('10 lines, no names', () => {
    assert.deepEqual([...encodeConfig({ ngpio: 10, namesSize: 0 })], [10, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('decodes exact values and ignores the padding bytes', () => {
    assert.deepEqual(decodeConfig(Uint8Array.of(0x20, 0x00, 0xff, 0xff, 0x0d, 0x01, 0x00, 0x00)), {
      ngpio: 32,
      namesSize: 0x10d,
    });
  });

  test('decodes from a view at a non-zero byte offset', () => {
    const backing = new Uint8Array(20).fill(0x99);
    backing.set([0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00], 7);
    assert.deepEqual(decodeConfig(backing.subarray(7, 15)), { ngpio: 3, namesSize: 4 });
  });

  test('short config is ProtocolError short', () => {
    for (let n = 0; n < CONFIG_SIZE; n++) {
      assert.throws(() => decodeConfig(new Uint8Array(n).fill(1)), protocolError('short'), `length ${n}`);
    }
  });

  test('ngpio 0 is ProtocolError range (Linux refuses it)', () => {
    assert.throws(() => decodeConfig(encodeConfig({ ngpio: 0, namesSize: 5 })), protocolError('range'));
  });

  test('round trip (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (ngpio, namesSize) => {
          assert.deepEqual(decodeConfig(encodeConfig({ ngpio, namesSize })), { ngpio, namesSize });
        },
      ),
    );
  });
});
