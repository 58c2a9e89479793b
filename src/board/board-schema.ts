import { z } from 'zod';

/**
 * The board part of a board file (README "Board files"): per-device `name` and `pull`, and the
 * top-level `wires`, `nets` and `peripherals`. zod schemas, so every issue carries its JSON path;
 * `checkBoard` adds the cross-references (line references that resolve, one driver per line).
 */

const REF_HINT =
  'expected a line reference "DEVICE:LINE" (a device name, then an offset or a line name), e.g. "board:3"';
export const lineRefSchema = z.string({ error: REF_HINT }).regex(/^[^:]+:.+$/, { error: REF_HINT });

export const pullSchema = z.enum(['up', 'down'], { error: 'expected a pull: "up" or "down"' });
export type Pull = z.infer<typeof pullSchema>;

const level = z.union([z.literal(0), z.literal(1)], { error: 'expected a level: 0 or 1' });
const ms = (max = 3_600_000) => z.number({ error: 'expected a number of milliseconds' }).min(0).max(max);
const peripheralName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a peripheral name of letters, digits, "_", "." or "-"' })
  .optional();

/** Fields a board adds to a device entry. */
export const boardDeviceFields = {
  /** What line references call the device ("board" in "board:3"); default its socket path. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a device name of letters, digits, "_", "." or "-"' })
    .optional(),
  /** Per line (offset or name): what the line reads when nothing drives it. */
  pull: z.record(z.string(), pullSchema).optional(),
};

export const wireSchema = z.strictObject({
  /** The output that drives. */
  from: lineRefSchema,
  /** The inputs it drives. */
  to: z.union([lineRefSchema, z.array(lineRefSchema).min(1, { error: 'expected at least one line' })]),
  /** Propagation delay. */
  delayMs: ms(60_000).optional(),
});

export const netSchema = z.strictObject({
  /** Lines on one open-drain net: any line driving 0 pulls it low, else it reads the pull. */
  lines: z.array(lineRefSchema).min(2, { error: 'expected at least two lines on a shared net' }),
  /** Default "up", as open-drain needs. */
  pull: pullSchema.optional(),
});

const buttonSchema = z.strictObject({
  type: z.literal('button'),
  name: peripheralName,
  line: lineRefSchema,
  /** The level while pressed; default the opposite of the line's pull (1 without a pull). */
  pressed: level.optional(),
  /** Contact bounce: each press and release makes `transitions` changes (odd) within `withinMs`. */
  bounce: z
    .strictObject({
      transitions: z
        .number()
        .int()
        .min(1)
        .max(999)
        .refine((n) => n % 2 === 1, {
          error: 'expected an odd number of transitions (it ends in the new state)',
        }),
      withinMs: ms(10_000),
    })
    .optional(),
});

const clockSchema = z.strictObject({
  type: z.literal('clock'),
  name: peripheralName,
  line: lineRefSchema,
  periodMs: z
    .number({ error: 'expected a period in milliseconds' })
    .min(0.01, { error: 'expected a period of at least 0.01 ms' })
    .max(3_600_000, { error: 'expected a period of at most an hour' }),
  /** Fraction of the period spent high, default 0.5. */
  duty: z
    .number()
    .gt(0, { error: 'expected a duty between 0 and 1' })
    .lt(1, { error: 'expected a duty between 0 and 1' })
    .optional(),
  /** Start ticking when the board starts (default true). */
  running: z.boolean().optional(),
});

const patternSchema = z
  .strictObject({
    type: z.literal('pattern'),
    name: peripheralName,
    line: lineRefSchema,
    /** Each level is held for its ms. */
    steps: z.array(z.strictObject({ level, ms: ms() })).min(1, { error: 'expected at least one step' }),
    loop: z.boolean().optional(),
  })
  .refine((p) => !p.loop || p.steps.some((s) => s.ms > 0), {
    error: 'expected a looping pattern to last more than 0 ms',
    path: ['steps'],
  });

const followerSchema = z.strictObject({
  type: z.literal('follower'),
  name: peripheralName,
  /** The line followed (usually a guest output). */
  from: lineRefSchema,
  /** The input that follows it. */
  to: lineRefSchema,
  delayMs: ms(60_000).optional(),
  invert: z.boolean().optional(),
});

const encoderSchema = z.strictObject({
  type: z.literal('encoder'),
  name: peripheralName,
  a: lineRefSchema,
  b: lineRefSchema,
  /** Initial position (quadrature steps). */
  position: z.number().int().optional(),
  /** Time between steps when moving to a new position, default 1 ms. */
  stepMs: ms(10_000).optional(),
});

const moduleSchema = z.strictObject({
  type: z.literal('module'),
  /** An ES module, relative to the board file; its default export is `(io, options) => void`. */
  module: z.string().min(1, { error: 'expected a module path' }),
  name: peripheralName,
  /** Role → line: the names the module uses with io.set / io.onLevel. */
  lines: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a role name like "req"' }),
    lineRefSchema,
  ),
  /** Passed to the module as its second argument (JSON). */
  options: z.json().optional(),
  /** A module that keeps the board waiting this long is stopped (default 1000 ms). */
  watchdogMs: z.number().int().min(10).max(60_000).optional(),
});

const TYPES = 'button, clock, pattern, follower, encoder, or a "module"';
export const peripheralSchema = z.preprocess(
  // `{ "module": "./x.js", ... }` needs no "type".
  (v) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && 'module' in v && !('type' in v)
      ? { ...v, type: 'module' }
      : v,
  z.discriminatedUnion(
    'type',
    [buttonSchema, clockSchema, patternSchema, followerSchema, encoderSchema, moduleSchema],
    {
      error: (i) => (i.code === 'invalid_union' ? `expected a peripheral type: ${TYPES}` : undefined),
    },
  ),
);
export type PeripheralSpec = z.infer<typeof peripheralSchema>;
export type ButtonSpec = z.infer<typeof buttonSchema>;
export type ClockSpec = z.infer<typeof clockSchema>;
export type PatternSpec = z.infer<typeof patternSchema>;
export type FollowerSpec = z.infer<typeof followerSchema>;
export type EncoderSpec = z.infer<typeof encoderSchema>;
export type ModuleSpec = z.infer<typeof moduleSchema>;

/** Top-level fields a board adds to the file. */
export const boardFields = {
  wires: z.array(wireSchema).optional(),
  nets: z.array(netSchema).optional(),
  peripherals: z.array(peripheralSchema).optional(),
};

/** A device as the board sees it: what its line references resolve against. */
export interface BoardDeviceSpec {
  name: string;
  lines: number;
  names?: readonly string[];
  pull?: Readonly<Record<string, Pull>>;
}

export interface BoardSpec {
  devices: readonly BoardDeviceSpec[];
  wires?: ReadonlyArray<z.infer<typeof wireSchema>>;
  nets?: ReadonlyArray<z.infer<typeof netSchema>>;
  peripherals?: readonly PeripheralSpec[];
  /** Where relative module paths start (the board file's directory). */
  baseDir?: string;
}

/** An in-process board definition (openLoopbackBoard), checked by the same rules as a board file. */
export const boardSchema = z.strictObject({
  devices: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.-]+$/, {
          error: 'expected a device name of letters, digits, "_", "." or "-"',
        }),
        lines: z.number().int().min(1).max(0xffff),
        names: z.array(z.string()).optional(),
        pull: boardDeviceFields.pull,
      }),
    )
    .min(1, { error: 'expected at least one device' }),
  ...boardFields,
  baseDir: z.string().optional(),
});
