import type { GuestMemory } from './guest-memory.ts';
import {
  availRingBytes,
  descTableBytes,
  isValidQueueSize,
  usedRingBytes,
  type RingLayout,
} from './split-ring.ts';
import { VirtqueueError } from './virtqueue-error.ts';

export interface RingViews {
  readonly desc: DataView;
  readonly avail: DataView;
  readonly used: DataView;
}

/**
 * Views of a split ring's descriptor table, avail ring and used ring in guest memory, for either
 * side. Throws VirtqueueError('layout') when the size is not a power of two up to 32768 or a part
 * does not lie inside one guest memory region.
 */
export function ringViews(mem: GuestMemory, layout: RingLayout): RingViews {
  if (!isValidQueueSize(layout.size))
    throw new VirtqueueError('layout', `queue size ${layout.size} is invalid`);
  try {
    return {
      desc: mem.dataView(layout.descAddr, descTableBytes(layout.size)),
      avail: mem.dataView(layout.availAddr, availRingBytes(layout.size)),
      used: mem.dataView(layout.usedAddr, usedRingBytes(layout.size)),
    };
  } catch {
    throw new VirtqueueError('layout', 'ring is not inside one guest memory region');
  }
}
