import { Feature } from '../protocol/constants.ts';
import { bit } from '../virtio/feature-bits.ts';

/** Which optional features a driver asks for; each defaults to true (ask when offered). */
export interface FeatureChoice {
  /** VIRTIO_GPIO_F_IRQ. */
  irq?: boolean;
  /** VIRTIO_F_EVENT_IDX. */
  eventIdx?: boolean;
  /** VIRTIO_F_INDIRECT_DESC. */
  indirect?: boolean;
}

/** The feature mask a virtio-gpio driver wants: VERSION_1 always, the rest as chosen. */
export function wantedFeatures(choice: FeatureChoice = {}): bigint {
  let want = bit(Feature.VERSION_1);
  if (choice.irq !== false) want |= bit(Feature.GPIO_F_IRQ);
  if (choice.eventIdx !== false) want |= bit(Feature.RING_EVENT_IDX);
  if (choice.indirect !== false) want |= bit(Feature.RING_INDIRECT_DESC);
  return want;
}
