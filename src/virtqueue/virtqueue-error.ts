export type VirtqueueErrorKind =
  | 'layout' // ring placement or size invalid
  | 'avail-index' // driver's avail idx ran more than a queue ahead
  | 'head-range' // descriptor index >= queue size
  | 'out-of-bounds' // buffer or table outside guest memory
  | 'loop' // chain longer than the queue (a cycle)
  | 'indirect' // malformed indirect table, or indirect not negotiated
  | 'nested-indirect'
  | 'order' // device-readable descriptor after a device-writable one
  | 'used' // (driver side) device returned an id that is not outstanding
  | 'full'; // (driver side) not enough free descriptors

/** A malformed ring. On the device side the queue is broken from then on and needs a reset. */
export class VirtqueueError extends Error {
  constructor(
    readonly kind: VirtqueueErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'VirtqueueError';
  }
}
