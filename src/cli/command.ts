/** One option, as `node:util` parseArgs takes it. */
export interface CliOption {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[] | boolean[];
}

/** The option table of one command. */
export type CliOptions = Record<string, CliOption>;

/** What parseArgs yields for `O`: strings for string options, booleans for flags, arrays when `multiple`. */
export type OptionValues<O extends CliOptions> = string extends keyof O
  ? { [k: string]: string | boolean | Array<string | boolean> | undefined }
  : {
      [K in keyof O]?: O[K] extends { type: 'boolean' }
        ? O[K] extends { multiple: true }
          ? boolean[]
          : boolean
        : O[K] extends { multiple: true }
          ? string[]
          : string;
    };

/**
 * One `vgpio` sub-command. main.ts parses the arguments against `options` (strict), answers
 * `--help`/`-h` with `usage` and `help`, checks the positional count against `positionals` (a
 * UsageError naming `usage` otherwise), and only then calls `run`.
 */
export interface CliCommand<O extends CliOptions = CliOptions> {
  /** One line: `vgpio watch PATH [LINE...] [--json] [--num-events N]`. */
  usage: string;
  /** Body of `vgpio CMD --help`: what it does, then the options, one per line. */
  help: string;
  options: O;
  positionals: { min: number; max?: number };
  /** Resolves to the exit status; throws UsageError for a command line it cannot act on (exit 2). */
  run(values: OptionValues<O>, positionals: string[]): Promise<number>;
}

/**
 * Types `run`'s values from the literal option table, and erases it to the plain CliCommand the
 * registry holds. (main.ts parses with exactly `c.options`, so the values have these types.)
 */
export const defineCommand = <const O extends CliOptions>(c: CliCommand<O>): CliCommand => ({
  ...c,
  run: (values, positionals) => c.run(values as OptionValues<O>, positionals),
});
