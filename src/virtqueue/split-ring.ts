/** Split virtqueue layout (virtio 1.2 §2.7) shared by the device and driver sides. */
import { VirtioFeature, bit } from '../virtio/feature-bits.ts';

export const DescFlag = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const AvailFlag = { NO_INTERRUPT: 1 } as const;
export const UsedFlag = { NO_NOTIFY: 1 } as const;

export const DESC_SIZE = 16;

/** Transport-independent ring feature masks (virtio 1.2 §6). */
export const RingFeature = {
  INDIRECT_DESC: bit(VirtioFeature.RING_INDIRECT_DESC),
  EVENT_IDX: bit(VirtioFeature.RING_EVENT_IDX),
} as const;

/** Which ring features a negotiated feature set turns on. */
export const ringOptions = (features: bigint): { eventIdx: boolean; indirect: boolean } => ({
  eventIdx: (features & RingFeature.EVENT_IDX) !== 0n,
  indirect: (features & RingFeature.INDIRECT_DESC) !== 0n,
});

export interface RingLayout {
  /** Queue size: a power of two, 1..32768. */
  readonly size: number;
  readonly descAddr: number;
  readonly availAddr: number;
  readonly usedAddr: number;
}

export const descTableBytes = (size: number): number => DESC_SIZE * size;
/** flags, idx, ring[size], used_event. */
export const availRingBytes = (size: number): number => 6 + 2 * size;
/** flags, idx, ring[size] of {id, len}, avail_event. */
export const usedRingBytes = (size: number): number => 6 + 8 * size;

export const isValidQueueSize = (size: number): boolean =>
  Number.isInteger(size) && size >= 1 && size <= 32768 && (size & (size - 1)) === 0;

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Places the three rings contiguously from base (legacy-compatible alignment). */
export function contiguousLayout(size: number, base: number): RingLayout & { bytes: number } {
  const descAddr = align(base, 16);
  const availAddr = descAddr + descTableBytes(size);
  const usedAddr = align(availAddr + availRingBytes(size), 4);
  return { size, descAddr, availAddr, usedAddr, bytes: usedAddr + usedRingBytes(size) - base };
}

/** The spec's vring_need_event: has new_idx passed event since old_idx (16-bit arithmetic)? */
export const needEvent = (event: number, newIdx: number, oldIdx: number): boolean =>
  ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);

const fenceCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * A full memory barrier. The other side of a ring runs in another process; between publishing an
 * index and reading the peer's event index a store must not pass the load (x86 allows that), or a
 * notification is lost. A locked read-modify-write is a full fence on x86 and arm64 alike.
 */
export function memoryFence(): void {
  Atomics.add(fenceCell, 0, 0);
}
