/**
 * Feature bits every virtio device type shares (virtio 1.2 §6 "Reserved Feature Bits"), as bit
 * numbers, and `bit()` to turn a bit number into a feature mask. Imports nothing, so a transport may
 * use it without knowing which device it carries.
 */
export const VirtioFeature = {
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

export const bit = (n: number): bigint => 1n << BigInt(n);
