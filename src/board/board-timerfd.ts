import { closeQuietly, FdPoller, timerfdArm, timerfdCreate, timerfdDisarm } from '../native/index.ts';
import { NodeBoardTimer, type BoardTimer, type BoardTimerFactory } from './board-timer.ts';

/**
 * Board time woken by a timerfd (CLOCK_MONOTONIC, armed at the absolute deadline): wake-ups land
 * tens of µs after a deadline instead of up to a millisecond, and never before it. Readiness comes
 * through the event loop (an FdPoller). The expiration count is never read: re-arming or disarming
 * a timerfd (timerfd_settime) resets it, and the scheduler re-arms on every wake-up, so a wake-up
 * costs one system call besides the poll (if nothing is re-armed, this disarms). Armed, it keeps
 * the event loop alive, as a pending Node timer does. Should the poller ever fail, the source goes
 * on with Node timers and says so once.
 */
export class TimerfdBoardTimer implements BoardTimer {
  private readonly fd: number;
  private readonly poller: FdPoller;
  private reffed = true;
  /** Expired and not re-armed yet (the fd stays readable until timerfd_settime). */
  private expired = false;
  private closed = false;
  private fallback: NodeBoardTimer | null = null;

  constructor(
    private readonly onWake: () => void,
    private readonly onBroken: (message: string) => void = () => {},
  ) {
    this.fd = timerfdCreate();
    try {
      this.poller = new FdPoller(this.fd, (err, readable) => {
        if (err) return this.broken(err.message);
        if (!readable || this.closed) return;
        this.expired = true;
        try {
          this.onWake();
        } finally {
          // Nothing armed from the wake-up: clear the expiration, and like a Node timer that
          // fired, stop holding the event loop.
          if (this.expired && !this.closed && !this.fallback) this.disarm();
        }
      });
      this.poller.start(true, false);
      this.setRef(false);
    } catch (e) {
      closeQuietly(this.fd);
      throw e;
    }
  }

  get kind(): string {
    return this.fallback ? 'node' : 'timerfd';
  }

  /** What is due within 20 µs of a wake-up runs with it (a wake-up costs more than waiting that long). */
  get earlyNs(): bigint {
    return this.fallback ? this.fallback.earlyNs : 20_000n;
  }

  /** A loop that keeps scheduling work for "now" takes one step per 100 µs, not a whole core. */
  get turnNs(): bigint {
    return this.fallback ? this.fallback.turnNs : 100_000n;
  }

  arm(deadlineNs: bigint): void {
    if (this.fallback) return this.fallback.arm(deadlineNs);
    timerfdArm(this.fd, deadlineNs < 1n ? 1n : deadlineNs);
    this.expired = false;
    this.setRef(true);
  }

  disarm(): void {
    if (this.fallback) return this.fallback.disarm();
    timerfdDisarm(this.fd);
    this.expired = false;
    this.setRef(false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fallback?.close();
    this.poller.close();
    closeQuietly(this.fd);
  }

  private setRef(on: boolean): void {
    if (on === this.reffed) return;
    this.reffed = on;
    if (on) this.poller.ref();
    else this.poller.unref();
  }

  private broken(message: string): void {
    if (this.fallback) return;
    this.poller.close();
    this.fallback = new NodeBoardTimer(this.onWake);
    this.onBroken(`board timer: the timerfd failed (${message}); going on with Node timers`);
    // Whatever was armed is lost with the timerfd: wake now, the scheduler re-arms for its earliest.
    this.fallback.arm(process.hrtime.bigint());
  }
}

/**
 * A factory for {@link TimerfdBoardTimer}s. `onBroken` hears of a fallback to Node timers: when no
 * timerfd can be made (e.g. out of descriptors), or when one fails later.
 */
export function timerfdBoardTimer(onBroken: (message: string) => void = () => {}): BoardTimerFactory {
  return (onWake) => {
    try {
      return new TimerfdBoardTimer(onWake, onBroken);
    } catch (e) {
      onBroken(`board timer: no timerfd (${e instanceof Error ? e.message : String(e)}); using Node timers`);
      return new NodeBoardTimer(onWake);
    }
  };
}
