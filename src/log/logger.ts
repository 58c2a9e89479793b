import { DEFAULT_RATE_LIMIT, LogRateLimiter, type RateLimit } from './rate-limiter.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | bigint | boolean | null | undefined>;

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export const isLogLevel = (s: string): s is LogLevel => s in rank;

export interface StreamLoggerOptions {
  level: LogLevel;
  format?: 'text' | 'json';
  write?: (line: string) => void;
  fields?: LogFields;
  /**
   * Lines above debug are limited per kind (see LogRateLimiter), separately for each child logger:
   * a guest repeating one mistake cannot flood the log. Default DEFAULT_RATE_LIMIT; null: no limit.
   */
  rateLimit?: RateLimit | null;
}

/** Structured log lines on a stream: logfmt-like text, or one JSON object per line. */
export class StreamLogger implements Logger {
  private readonly limiter: LogRateLimiter | null;

  constructor(private readonly opts: StreamLoggerOptions) {
    const limit = opts.rateLimit === undefined ? DEFAULT_RATE_LIMIT : opts.rateLimit;
    this.limiter = limit && new LogRateLimiter(limit, (l, m, f) => this.write(l, m, f));
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (rank[level] < rank[this.opts.level]) return;
    if (level !== 'debug' && this.limiter && !this.limiter.admit(level, msg)) return;
    this.write(level, msg, fields);
  }

  /** Writes the counts of lines suppressed so far (e.g. before exiting). */
  flush(): void {
    this.limiter?.flush();
  }

  private write(level: LogLevel, msg: string, fields: LogFields): void {
    const all: LogFields = { ...this.opts.fields, ...fields };
    const time = new Date().toISOString();
    let line: string;
    if (this.opts.format === 'json') {
      const obj: Record<string, unknown> = { time, level, msg };
      for (const [k, v] of Object.entries(all))
        if (v !== undefined) obj[k] = typeof v === 'bigint' ? String(v) : v;
      line = JSON.stringify(obj);
    } else {
      const kv = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${quote(String(v))}`);
      line = [time, level.toUpperCase().padEnd(5), msg, ...kv].join(' ');
    }
    (this.opts.write ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  }

  child(fields: LogFields): Logger {
    return new StreamLogger({ ...this.opts, fields: { ...this.opts.fields, ...fields } });
  }
}

/** Drops everything (tests, library use). */
export const silentLogger: Logger = { log: () => {}, child: () => silentLogger };

const quote = (s: string): string => (/^[^\s"=]+$/.test(s) ? s : JSON.stringify(s));
