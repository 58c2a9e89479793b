/**
 * Exact counts of what front-ends did to one served device, over all its connections: the log
 * limits repeated lines, these never skip one. Read them from `VhostUserServer.counters` (or the
 * object given to a `VhostUserBackend`).
 */
export interface VhostUserCounters {
  /** Front-end connections accepted (or handed over). */
  connections: number;
  /** Messages received. */
  messages: number;
  /** Requests refused: answered with a failed REPLY_ACK, or, when no reply can say no, a disconnect. */
  refused: number;
  /** Connections ended because the front-end broke the protocol or made the device unusable. */
  dropped: number;
}

export const newCounters = (): VhostUserCounters => ({ connections: 0, messages: 0, refused: 0, dropped: 0 });
