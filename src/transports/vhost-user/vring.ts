import { FdPoller, closeFd, eventfdRead } from '../../native/index.ts';
import type { DeviceQueue } from '../../virtqueue/device-queue.ts';
import type { VringAddr } from './message.ts';

/** One ring's vhost-user state on the back-end side (notes §10.4). */
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
  private kickPoller: FdPoller | null = null;

  constructor(readonly index: number) {}

  /**
   * Throws (leaving the ring as it was) when `fd` cannot be polled, e.g. a regular file. A kick fd
   * that turns out not to be a readable eventfd (a socket at EOF stays readable forever) is no
   * longer polled, and `onBroken` is told.
   */
  setKick(fd: number | null, onKick: () => void, onBroken?: (error: string) => void): void {
    const poller =
      fd === null
        ? null
        : new FdPoller(fd, (err, readable) => {
            if (err || !readable) return;
            let any = false;
            try {
              any = drainEventfd(fd);
            } catch (e) {
              poller?.stop();
              onBroken?.((e as Error).message);
            }
            if (any) onKick();
          });
    this.kickPoller?.close();
    this.kickPoller = poller;
    this.replace('kickFd', fd);
    poller?.start(true, false);
  }

  replace(which: 'kickFd' | 'callFd' | 'errFd', fd: number | null): void {
    const old = this[which];
    if (old !== null && old !== fd) closeQuietly(old);
    this[which] = fd;
  }

  /** Closes every fd; the ring is back to its initial state. */
  dispose(): void {
    this.kickPoller?.close();
    this.kickPoller = null;
    for (const k of ['kickFd', 'callFd', 'errFd'] as const) this.replace(k, null);
    this.started = this.enabled = false;
    this.live = null;
    this.num = this.base = 0;
    this.addr = null;
  }
}

/**
 * Reads an eventfd until it is empty (uv_poll is level-triggered); true if anything was read.
 * Throws when the fd cannot be read: the caller must stop polling it, or it spins.
 */
export function drainEventfd(fd: number): boolean {
  let any = false;
  while (eventfdRead(fd) !== null) any = true;
  return any;
}

export function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // already closed
  }
}
