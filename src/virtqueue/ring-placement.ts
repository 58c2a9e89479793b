import { contiguousLayout, type RingLayout } from './split-ring.ts';

/** Bytes left free after each queue's rings. */
const GAP = 64;

/**
 * Places the rings of queues of the given sizes one after another from guest address `base` (each
 * queue contiguous, see `contiguousLayout`), and returns their layouts and the first address past
 * them, where buffers may start.
 */
export function placeRings(sizes: readonly number[], base: number): { layouts: RingLayout[]; end: number } {
  let at = base;
  const layouts = sizes.map((size) => {
    const l = contiguousLayout(size, at);
    at += l.bytes + GAP;
    return { size: l.size, descAddr: l.descAddr, availAddr: l.availAddr, usedAddr: l.usedAddr };
  });
  return { layouts, end: at };
}
