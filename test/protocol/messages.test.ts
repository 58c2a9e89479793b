import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeIrqRequest,
  decodeIrqResponse,
  decodeRequest,
  decodeResponse,
  encodeIrqRequest,
  encodeRequest,
  encodeResponse,
} from '../../src/protocol/messages.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import {
  IRQ_REQUEST_SIZE,
  IRQ_RESPONSE_SIZE,
  IrqStatus,
  IrqType,
  MessageType,
  REQUEST_SIZE,
  RESPONSE_SIZE,
  Status,
} from '../../src/protocol/constants.ts';

/** assert.throws matcher: a ProtocolError of exactly this kind. */
const protocolError =
  (kind: ProtocolError['kind']) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    assert.equal(e.name, 'ProtocolError');
    return true;
  };

/** The same bytes at a non-zero offset inside a larger buffer (catches DataView offset bugs). */
function embedded(bytes: readonly number[], before = 5, after = 3): Uint8Array {
  const backing = new Uint8Array(before + bytes.length + after).fill(0xee);
  backing.set(bytes, before);
  return backing.subarray(before, before + bytes.length);
}

describe('request (le16 type, le16 gpio, le32 value)', () => {
  test('SET_IRQ_TYPE gpio 0x102 value 3 encodes to exact little-endian bytes', () => {
    const b = encodeRequest({ type: MessageType.SET_IRQ_TYPE, gpio: 0x102, value: IrqType.EDGE_BOTH });
    assert.equal(b.length, REQUEST_SIZE);
    assert.deepEqual([...b], [0x06, 0x00, 0x02, 0x01, 0x03, 0x00, 0x00, 0x00]);
  });

  test('every field is little-endian at its offset', () => {
    const b = encodeRequest({ type: 0xa1b2, gpio: 0xc3d4, value: 0x11223344 });
    assert.deepEqual([...b], [0xb2, 0xa1, 0xd4, 0xc3, 0x44, 0x33, 0x22, 0x11]);
  });

  test('value is taken as an unsigned 32-bit number', () => {
    assert.deepEqual(
      [...encodeRequest({ type: 5, gpio: 0, value: -1 })],
      [0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
    );
    assert.equal(decodeRequest(encodeRequest({ type: 5, gpio: 0, value: 0xffffffff })).value, 0xffffffff);
  });

  test('decodes exact values, also from a view at a non-zero byte offset', () => {
    const bytes = [0x03, 0x00, 0x07, 0x00, 0x02, 0x00, 0x00, 0x00];
    const expected = { type: MessageType.SET_DIRECTION, gpio: 7, value: 2 };
    assert.deepEqual(decodeRequest(Uint8Array.from(bytes)), expected);
    assert.deepEqual(decodeRequest(embedded(bytes)), expected);
  });

  test('decode ignores bytes past the first 8', () => {
    const b = Uint8Array.from([0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff]);
    assert.deepEqual(decodeRequest(b), { type: MessageType.GET_VALUE, gpio: 1, value: 0 });
  });

  test('short buffers are ProtocolError short, for every length below 8', () => {
    for (let n = 0; n < REQUEST_SIZE; n++) {
      assert.throws(() => decodeRequest(new Uint8Array(n)), protocolError('short'), `length ${n}`);
    }
  });

  test('a short view into a longer buffer is still short', () => {
    const backing = new Uint8Array(32);
    assert.throws(() => decodeRequest(backing.subarray(10, 17)), protocolError('short'));
  });

  test('round trip (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.nat(),
        (type, gpio, v) => {
          const value = v >>> 0;
          assert.deepEqual(decodeRequest(encodeRequest({ type, gpio, value })), { type, gpio, value });
        },
      ),
    );
  });
});

describe('response (u8 status, u8 value)', () => {
  test('encodes exact bytes', () => {
    assert.deepEqual([...encodeResponse({ status: Status.OK, value: 1 })], [0x00, 0x01]);
    assert.deepEqual([...encodeResponse({ status: Status.ERR, value: 0 })], [0x01, 0x00]);
    assert.equal(encodeResponse({ status: Status.OK, value: 2 }).length, RESPONSE_SIZE);
  });

  test('value is truncated to a byte', () => {
    assert.deepEqual([...encodeResponse({ status: Status.OK, value: 0x1ff })], [0x00, 0xff]);
  });

  test('decodes OK and ERR with used length 2', () => {
    assert.deepEqual(decodeResponse(Uint8Array.of(0, 2), 2), { status: Status.OK, value: 2 });
    assert.deepEqual(decodeResponse(Uint8Array.of(1, 0), 2), { status: Status.ERR, value: 0 });
    assert.deepEqual(decodeResponse(embedded([0, 1]), 2), { status: Status.OK, value: 1 });
  });

  test('only the first two bytes of a larger writable area matter', () => {
    assert.deepEqual(decodeResponse(Uint8Array.of(0, 1, 9, 9), 2), { status: Status.OK, value: 1 });
  });

  test('used length other than 2 is ProtocolError size', () => {
    const b = Uint8Array.of(0, 1, 0, 0);
    for (const used of [0, 1, 3, 4, 0xffffffff]) {
      assert.throws(() => decodeResponse(b, used), protocolError('size'), `used ${used}`);
    }
  });

  test('a buffer shorter than 2 is ProtocolError size even when the used length says 2', () => {
    assert.throws(() => decodeResponse(Uint8Array.of(0), 2), protocolError('size'));
    assert.throws(() => decodeResponse(new Uint8Array(0), 2), protocolError('size'));
  });

  test('a status other than OK/ERR is ProtocolError range', () => {
    for (const s of [2, 0x7f, 0xff]) {
      assert.throws(() => decodeResponse(Uint8Array.of(s, 0), 2), protocolError('range'), `status ${s}`);
    }
  });

  test('round trip (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(Status.OK, Status.ERR),
        fc.integer({ min: 0, max: 255 }),
        (status, value) => {
          assert.deepEqual(decodeResponse(encodeResponse({ status, value }), RESPONSE_SIZE), {
            status,
            value,
          });
        },
      ),
    );
  });
});

describe('irq request (le16 gpio)', () => {
  test('encodes exact bytes', () => {
    assert.deepEqual([...encodeIrqRequest(0x1234)], [0x34, 0x12]);
    assert.deepEqual([...encodeIrqRequest(0)], [0x00, 0x00]);
    assert.equal(encodeIrqRequest(0xffff).length, IRQ_REQUEST_SIZE);
  });

  test('decodes exact values, also at a non-zero byte offset', () => {
    assert.equal(decodeIrqRequest(Uint8Array.of(0x02, 0x01)), 0x102);
    assert.equal(decodeIrqRequest(embedded([0xff, 0x7f])), 0x7fff);
  });

  test('short buffers are ProtocolError short', () => {
    assert.throws(() => decodeIrqRequest(new Uint8Array(0)), protocolError('short'));
    assert.throws(() => decodeIrqRequest(Uint8Array.of(1)), protocolError('short'));
    assert.throws(() => decodeIrqRequest(new Uint8Array(8).subarray(7)), protocolError('short'));
  });

  test('round trip (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (gpio) => {
        assert.equal(decodeIrqRequest(encodeIrqRequest(gpio)), gpio);
      }),
    );
  });
});

describe('irq response (u8 status, used length exactly 1)', () => {
  test('decodes VALID and INVALID', () => {
    assert.equal(decodeIrqResponse(Uint8Array.of(1), 1), IrqStatus.VALID);
    assert.equal(decodeIrqResponse(Uint8Array.of(0), 1), IrqStatus.INVALID);
    assert.equal(decodeIrqResponse(embedded([1]), IRQ_RESPONSE_SIZE), IrqStatus.VALID);
  });

  test('used length other than 1 is ProtocolError size', () => {
    for (const used of [0, 2, 8, 0xffffffff]) {
      assert.throws(
        () => decodeIrqResponse(Uint8Array.of(1, 0), used),
        protocolError('size'),
        `used ${used}`,
      );
    }
  });

  test('an empty buffer is ProtocolError size', () => {
    assert.throws(() => decodeIrqResponse(new Uint8Array(0), 1), protocolError('size'));
  });

  test('an unknown status is ProtocolError range', () => {
    for (const s of [2, 3, 0x80, 0xff]) {
      assert.throws(() => decodeIrqResponse(Uint8Array.of(s), 1), protocolError('range'), `status ${s}`);
    }
  });
});
