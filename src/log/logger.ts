export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | bigint | boolean | null | undefined>;

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export const isLogLevel = (s: string): s is LogLevel => s in rank;

/** Structured log lines on a stream: logfmt-like text, or one JSON object per line. */
export class StreamLogger implements Logger {
  constructor(
    private readonly opts: {
      level: LogLevel;
      format?: 'text' | 'json';
      write?: (line: string) => void;
      fields?: LogFields;
    },
  ) {}

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (rank[level] < rank[this.opts.level]) return;
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
