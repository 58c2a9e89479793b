import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { codeName } from '../../src/virtio/code-name.ts';
import { VirtioFeature, bit } from '../../src/virtio/feature-bits.ts';

const Table = { ALPHA: 1, BETA: 0x20, GAMMA: 0 } as const;

describe('codeName', () => {
  test('names every code of the table', () => {
    for (const [name, code] of Object.entries(Table)) assert.equal(codeName(Table, code), name);
  });
  test('an unknown code is shown in hex by default', () => {
    assert.equal(codeName(Table, 0x2a), '0x2a');
  });
  test('an unknown code uses the fallback given', () => {
    assert.equal(
      codeName(Table, 7, (c) => `UNKNOWN(${c})`),
      'UNKNOWN(7)',
    );
    assert.equal(
      codeName(Table, 1, () => 'never'),
      'ALPHA',
    );
  });
});

describe('feature bits', () => {
  test('bit() is the mask of a bit number, above 31 too', () => {
    assert.equal(bit(0), 1n);
    assert.equal(bit(VirtioFeature.RING_INDIRECT_DESC), 0x1000_0000n);
    assert.equal(bit(VirtioFeature.RING_EVENT_IDX), 0x2000_0000n);
    assert.equal(bit(VirtioFeature.VERSION_1), 0x1_0000_0000n);
  });
});
