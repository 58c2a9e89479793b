import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONFIG_SIZE,
  Direction,
  EVENT_QUEUE,
  Feature,
  IRQ_REQUEST_SIZE,
  IRQ_RESPONSE_SIZE,
  IrqStatus,
  IrqType,
  MessageType,
  REQUEST_QUEUE,
  REQUEST_SIZE,
  RESPONSE_SIZE,
  Status,
  VIRTIO_ID_GPIO,
  bit,
  directionName,
  irqTypeName,
  isDirection,
  isEdgeType,
  isIrqType,
  isLevelType,
  messageTypeName,
} from '../../src/protocol/constants.ts';

describe('virtio 1.2 §5.18 identifiers', () => {
  test('device id, queues, feature bits', () => {
    assert.equal(VIRTIO_ID_GPIO, 41);
    assert.equal(REQUEST_QUEUE, 0);
    assert.equal(EVENT_QUEUE, 1);
    assert.deepEqual(Feature, { GPIO_F_IRQ: 0, RING_INDIRECT_DESC: 28, RING_EVENT_IDX: 29, VERSION_1: 32 });
    assert.equal(bit(Feature.VERSION_1), 0x1_0000_0000n);
    assert.equal(bit(Feature.GPIO_F_IRQ), 1n);
  });

  test('message, status, direction, irq codes', () => {
    assert.deepEqual(MessageType, {
      GET_LINE_NAMES: 1,
      GET_DIRECTION: 2,
      SET_DIRECTION: 3,
      GET_VALUE: 4,
      SET_VALUE: 5,
      SET_IRQ_TYPE: 6,
    });
    assert.deepEqual(Status, { OK: 0, ERR: 1 });
    assert.deepEqual(Direction, { NONE: 0, OUT: 1, IN: 2 });
    assert.deepEqual(IrqType, {
      NONE: 0,
      EDGE_RISING: 1,
      EDGE_FALLING: 2,
      EDGE_BOTH: 3,
      LEVEL_HIGH: 4,
      LEVEL_LOW: 8,
    });
    assert.deepEqual(IrqStatus, { INVALID: 0, VALID: 1 });
  });

  test('wire sizes', () => {
    assert.deepEqual(
      [REQUEST_SIZE, RESPONSE_SIZE, IRQ_REQUEST_SIZE, IRQ_RESPONSE_SIZE, CONFIG_SIZE],
      [8, 2, 2, 1, 8],
    );
  });
});

describe('code helpers', () => {
  test('names of known and unknown codes', () => {
    assert.equal(messageTypeName(6), 'SET_IRQ_TYPE');
    assert.equal(messageTypeName(0x1f), '0x1f');
    assert.equal(directionName(2), 'IN');
    assert.equal(directionName(3), '0x3');
    assert.equal(irqTypeName(8), 'LEVEL_LOW');
    assert.equal(irqTypeName(5), '0x5');
  });

  test('isDirection accepts exactly 0, 1, 2', () => {
    const accepted = [...Array(260).keys()].filter(isDirection);
    assert.deepEqual(accepted, [0, 1, 2]);
  });

  test('isIrqType accepts exactly 0, 1, 2, 3, 4, 8', () => {
    const accepted = [...Array(260).keys()].filter(isIrqType);
    assert.deepEqual(accepted, [0, 1, 2, 3, 4, 8]);
  });

  test('edge and level classification', () => {
    const all = Object.values(IrqType);
    assert.deepEqual(all.filter(isEdgeType), [1, 2, 3]);
    assert.deepEqual(all.filter(isLevelType), [4, 8]);
  });
});
