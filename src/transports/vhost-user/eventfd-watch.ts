import { readFileSync } from 'node:fs';
import { FdPoller } from '../../native/index.ts';

/**
 * Watches an eventfd (a kick or call fd) and reports signals. The poller is level-triggered: each
 * time it says readable, ONE read that cannot block takes the counter (an eventfd read empties it),
 * so a front-end that clears O_NONBLOCK on the shared open file cannot make us wait, and a
 * counter a peer drains in between just reads as nothing. An fd that cannot be read (not really an
 * eventfd, or gone) stops the watch: polling it again would spin.
 */
export class EventfdWatch {
  private readonly poller: FdPoller;

  /** Throws when `fd` cannot be polled at all (e.g. a regular file or memfd). */
  constructor(
    readonly fd: number,
    onSignal: () => void,
    onBroken: (error: string) => void = () => {},
  ) {
    // The addon does that read before calling back (drainEventfd): one call per wake-up instead of
    // two, none when the counter was already drained. A failed read arrives as `err`, stopped.
    this.poller = new FdPoller(
      fd,
      (err, readable) => {
        if (err) return onBroken(err.message);
        if (readable) onSignal();
      },
      { drainEventfd: true },
    );
    this.poller.start(true, false);
  }

  /** Do not keep the event loop alive for this fd (a test client). */
  unref(): void {
    this.poller.unref();
  }

  /** No callback runs after this returns; the fd itself stays open (its owner closes it). */
  close(): void {
    this.poller.close();
  }
}

/**
 * True when `fd` (an eventfd of this process) is in semaphore mode, where each read takes 1, not the
 * whole counter: as a kick fd at 2^64-2 it would stay readable for ever and spin the event loop.
 * Recent kernels show the mode in /proc/self/fdinfo (`eventfd-semaphore:`); null where it is not shown.
 */
export function isSemaphoreEventfd(fd: number): boolean | null {
  let info: string;
  try {
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return null;
  }
  const m = /^eventfd-semaphore:\s*(\d)/m.exec(info);
  return m ? m[1] === '1' : null;
}
