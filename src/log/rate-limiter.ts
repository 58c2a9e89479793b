import type { LogFields, LogLevel } from './logger.ts';

export interface RateLimit {
  /** Lines of one kind written in full before the rest are only counted. */
  burst: number;
  /** How often a count of the suppressed lines is written (ms). */
  intervalMs: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { burst: 5, intervalMs: 10_000 };

/** Distinct kinds tracked per scope; any beyond share one count (a guest cannot grow the table). */
const MAX_KINDS = 256;
const OTHER = '(other kinds)';

interface Kind {
  level: LogLevel;
  msg: string;
  written: number;
  suppressed: number;
  /** Seen since the last tick: a kind quiet for a whole interval starts over with a full burst. */
  seen: boolean;
}

/**
 * Decides, per kind of line, which lines are written: the first `burst` in full, then only a
 * summary line per interval with the count of those suppressed, until the kind has been quiet
 * for a whole interval. A kind is the message with its numbers blanked, so `line 3: …` and
 * `line 4: …` are one kind. One limiter serves one scope (a device's logger), so one device's
 * flood never hides another's lines.
 */
export class LogRateLimiter {
  private readonly kinds = new Map<string, Kind>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limit: RateLimit,
    private readonly emit: (level: LogLevel, msg: string, fields: LogFields) => void,
  ) {}

  /** True when this line is to be written now; otherwise it was counted. */
  admit(level: LogLevel, msg: string): boolean {
    let key = `${level} ${msg.replace(/0x[0-9a-f]+|\d+/gi, '#')}`;
    let k = this.kinds.get(key);
    if (!k && this.kinds.size >= MAX_KINDS) {
      key = OTHER;
      k = this.kinds.get(key);
      msg = OTHER;
    }
    if (!k) {
      k = { level, msg, written: 0, suppressed: 0, seen: false };
      this.kinds.set(key, k);
      this.timer ??= setInterval(() => this.flush(), this.limit.intervalMs).unref();
    }
    k.seen = true;
    if (k.written < this.limit.burst) {
      k.written++;
      return true;
    }
    k.suppressed++;
    return false;
  }

  /** Writes the counts of suppressed lines and forgets kinds that were quiet (runs every interval). */
  flush(): void {
    for (const [key, k] of this.kinds) {
      if (k.suppressed > 0)
        this.emit(k.level, k.msg, {
          suppressed: k.suppressed,
          interval_s: this.limit.intervalMs / 1000,
        });
      k.suppressed = 0;
      if (!k.seen) this.kinds.delete(key);
      k.seen = false;
    }
    if (this.kinds.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
