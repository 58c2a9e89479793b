import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Feature, bit } from '../../src/protocol/constants.ts';
import { wantedFeatures } from '../../src/driver/wanted-features.ts';

describe('wantedFeatures', () => {
  test('asks for everything by default', () => {
    assert.equal(
      wantedFeatures(),
      bit(Feature.VERSION_1) |
        bit(Feature.GPIO_F_IRQ) |
        bit(Feature.RING_EVENT_IDX) |
        bit(Feature.RING_INDIRECT_DESC),
    );
  });
  test('each option set false drops exactly its bit; VERSION_1 stays', () => {
    const all = wantedFeatures();
    assert.equal(wantedFeatures({ irq: false }), all & ~bit(Feature.GPIO_F_IRQ));
    assert.equal(wantedFeatures({ eventIdx: false }), all & ~bit(Feature.RING_EVENT_IDX));
    assert.equal(wantedFeatures({ indirect: false }), all & ~bit(Feature.RING_INDIRECT_DESC));
    assert.equal(wantedFeatures({ irq: false, eventIdx: false, indirect: false }), bit(Feature.VERSION_1));
  });
});
