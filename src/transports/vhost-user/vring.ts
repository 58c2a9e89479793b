import { closeQuietly } from '../../native/index.ts';
import type { DeviceQueue } from '../../virtqueue/device-queue.ts';
import { EventfdWatch } from './eventfd-watch.ts';
import type { VringAddr } from './message.ts';

/** One ring's vhost-user state on the back-end side (docs/protocol.md §7). */
export class Vring {
  num = 0;
  /** Next avail index to process when the ring (re)starts. */
  base = 0;
  addr: VringAddr | null = null;
  kickFd: number | null = null;
  callFd: number | null = null;
  errFd: number | null = null;
  /** Started by SET_VRING_KICK, stopped by GET_VRING_BASE. */
  started = false;
  /** SET_VRING_ENABLE (or all enabled when protocol features were not negotiated). */
  enabled = false;
  /** The queue handed to the device while started and enabled. */
  live: DeviceQueue | null = null;
  /** Chains left for the next turn of the event loop (the back-end's ring weight): a turn is queued. */
  resumeScheduled = false;
  private kickWatch: EventfdWatch | null = null;

  constructor(readonly index: number) {}

  /**
   * Throws (leaving the ring as it was) when `fd` cannot be polled. A kick fd that turns out
   * unreadable is no longer polled, and `onBroken` is told.
   */
  setKick(fd: number | null, onKick: () => void, onBroken: (error: string) => void): void {
    const watch = fd === null ? null : new EventfdWatch(fd, onKick, onBroken);
    this.kickWatch?.close();
    this.kickWatch = watch;
    this.replace('kickFd', fd);
  }

  replace(which: 'kickFd' | 'callFd' | 'errFd', fd: number | null): void {
    const old = this[which];
    if (old !== null && old !== fd) closeQuietly(old);
    this[which] = fd;
  }

  /** Closes every fd; the ring is back to its initial state. */
  dispose(): void {
    this.kickWatch?.close();
    this.kickWatch = null;
    for (const k of ['kickFd', 'callFd', 'errFd'] as const) this.replace(k, null);
    this.started = this.enabled = false;
    this.live = null;
    this.num = this.base = 0;
    this.addr = null;
  }
}
