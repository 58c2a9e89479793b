import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { boardIssues } from '../board/board-layout.ts';
import { boardDeviceFields, boardFields, type BoardSpec } from '../board/board-schema.ts';
import { controlPathFor } from '../control/control-protocol.ts';
import { mqttFields } from '../mqtt/mqtt-schema.ts';
import type { DeviceConfig } from './served-device.ts';

/**
 * The devices `vgpio serve` runs, as a zod schema: the TypeScript types are inferred from it,
 * every issue carries its JSON path, and there is no generated code to keep in step. One device
 * entry is `deviceSchema`; a board file can extend it (`deviceSchema.extend({...})`).
 */

const octalMode = z
  .string({ error: 'expected an octal mode string like "0660" (a JSON number would be read as decimal)' })
  .regex(/^0?[0-7]{3}$/, {
    error: (i) => `expected an octal mode like "0660", got ${JSON.stringify(i.input)}`,
  })
  .transform((s) => parseInt(s, 8));

// 7-bit ASCII without NUL, as the names block carries them (docs/protocol.md §1); '' leaves a line unnamed.
// eslint-disable-next-line no-control-regex
const lineName = z.string().regex(/^[\x01-\x7f]*$/, { error: 'expected a 7-bit ASCII line name' });

const lineCount = z.number().int().min(1).max(0xffff);

/** A host chip's line offsets (uAPI v2 offsets are u32; a virtio device has at most 65535 lines). */
const chipOffsets = z
  .array(z.number().int().min(0).max(0xffffffff))
  .min(1, { error: 'expected at least one chip line offset' })
  .max(0xffff);

/** `vgpio serve --workers N` / `"workers": N`: at most this many device worker threads. */
export const MAX_WORKERS = 64;

export const deviceSchema = z.strictObject({
  /** vhost-user socket path, served exactly as given. */
  socket: z.string().min(1, { error: 'expected a socket path' }),
  /** A host GPIO chip whose lines to serve (e.g. /dev/gpiochip0); then `lines` lists its offsets. */
  chip: z.string().min(1, { error: 'expected a GPIO chip path like /dev/gpiochip0' }).optional(),
  lines: z
    .union([lineCount, chipOffsets], {
      // Say what is wrong with the alternative the input looks like, not "Invalid input".
      error: (i) =>
        (Array.isArray(i.input) ? chipOffsets : lineCount).safeParse(i.input).error?.issues[0]?.message,
    })
    .optional(),
  names: z.array(lineName).optional(),
  socketMode: octalMode.optional(),
  /** Control socket path (default SOCKET.ctl). */
  control: z.string().min(1, { error: 'expected a socket path' }).optional(),
  /** `vgpio serve --workers N`: the worker thread (0..N-1) that serves this device (default: round-robin). */
  worker: z
    .number()
    .int()
    .min(0)
    .max(MAX_WORKERS - 1)
    .optional(),
  /** A board file's device name and per-line pulls (src/board/board-schema.ts). */
  ...boardDeviceFields,
});

type DeviceEntry = z.infer<typeof deviceSchema>;

/** A chip device takes offsets and the chip's names; a simulated one a count, each offset once. */
const checkChip = (d: DeviceEntry, ctx: z.RefinementCtx, at: PropertyKey[]): void => {
  if (d.chip === undefined) {
    if (Array.isArray(d.lines))
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'lines'],
        message: 'expected a line count: an array of line offsets needs "chip"',
      });
    return;
  }
  if (typeof d.lines === 'number')
    ctx.addIssue({
      code: 'custom',
      path: [...at, 'lines'],
      message: 'expected an array of chip line offsets (the chip has its own line count)',
    });
  if (d.names !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: [...at, 'names'],
      message: 'expected no names: they come from the chip',
    });
  if (Array.isArray(d.lines)) checkOffsets(d.lines, ctx, [...at, 'lines']);
};

const checkOffsets = (offsets: readonly number[], ctx: z.RefinementCtx, at: PropertyKey[]): void => {
  const seen = new Set<number>();
  offsets.forEach((o, i) => {
    if (seen.has(o))
      ctx.addIssue({
        code: 'custom',
        path: [...at, i],
        message: `expected each offset once: ${o} is listed twice`,
      });
    seen.add(o);
  });
};

/** Names no more than lines, each name once. */
const checkNames = (
  d: { lines?: number | number[]; names?: string[] },
  ctx: z.RefinementCtx,
  at: PropertyKey[],
): void => {
  const names = d.names ?? [];
  const count = typeof d.lines === 'number' ? d.lines : 8;
  if (Array.isArray(d.lines)) return; // a chip device: checkChip
  if (names.length > count)
    ctx.addIssue({
      code: 'custom',
      path: [...at, 'names'],
      message: `expected at most ${count} names (one per line), got ${names.length}`,
    });
  const seen = new Map<string, number>();
  names.forEach((n, i) => {
    if (n === '') return;
    if (seen.has(n))
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'names', i],
        message: `expected a unique name: ${JSON.stringify(n)} is also line ${seen.get(n)}`,
      });
    else seen.set(n, i);
  });
};

export const configFileSchema = z
  .strictObject({
    devices: z.array(deviceSchema).min(1, { error: 'expected at least one device' }),
    /** Worker threads serving the devices (0: all on the main thread; `--workers` overrides it). */
    workers: z.number().int().min(0).max(MAX_WORKERS).optional(),
    ...boardFields,
    /** Lines on an MQTT broker (src/mqtt/mqtt-schema.ts). */
    ...mqttFields,
  })
  .superRefine((file, ctx) => {
    const board = boardSpecOf(file);
    if (board)
      for (const i of boardIssues(board))
        ctx.addIssue({ code: 'custom', path: i.pathParts, message: i.message });
    const paths = new Map<string, string>();
    file.devices.forEach((d, i) => {
      if (d.worker !== undefined && file.workers !== undefined && d.worker >= file.workers)
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'worker'],
          message: `expected a worker 0..${file.workers - 1} ("workers" is ${file.workers})`,
        });
      checkNames(d, ctx, ['devices', i]);
      checkChip(d, ctx, ['devices', i]);
      const own: Array<[string, string]> = [
        ['socket', d.socket],
        ['control', d.control ?? controlPathFor(d.socket)],
      ];
      for (const [key, p] of own) {
        const where = `devices[${i}].${key}`;
        const other = paths.get(p);
        if (other)
          ctx.addIssue({
            code: 'custom',
            path: ['devices', i, key],
            message: `expected a path of its own: ${p} is also ${other}`,
          });
        else paths.set(p, where);
      }
    });
  });

export type ConfigFile = z.infer<typeof configFileSchema>;

/** The board in a config file (devices named by `name`, else their socket path), or null if it has none. */
function boardSpecOf(file: ConfigFile, baseDir?: string): BoardSpec | null {
  const hasBoard =
    file.wires !== undefined ||
    file.nets !== undefined ||
    file.peripherals !== undefined ||
    file.devices.some((d) => d.pull !== undefined || d.name !== undefined);
  if (!hasBoard) return null;
  return {
    // A host chip's lines are its hardware's: not on the board.
    devices: file.devices
      .filter((d) => d.chip === undefined)
      .map((d) => ({
        name: d.name ?? d.socket,
        lines: typeof d.lines === 'number' ? d.lines : 8,
        names: d.names,
        pull: d.pull,
      })),
    wires: file.wires,
    nets: file.nets,
    peripherals: file.peripherals,
    baseDir,
  };
}

/** The board of a `--config` FILE already checked by parseConfigFile; module paths relative to the file. */
export function parseBoardFile(file: string, text: string): BoardSpec | null {
  const r = configFileSchema.safeParse(JSON.parse(text));
  if (!r.success) throw new ConfigError(describe(`${file}: `, r.error));
  return boardSpecOf(r.data, dirname(resolve(file)));
}

/** A config file or command line that fails the schema: every issue, each with its place. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `devices[1].socketMode` from zod's path array. */
export const jsonPath = (path: readonly PropertyKey[]): string =>
  path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('') ||
  '(top level)';

const describe = (where: string, error: z.ZodError, place = jsonPath): string =>
  error.issues.map((i) => `${where}${place(i.path)}: ${i.message}`).join('\n');

const toDeviceConfig = (d: DeviceEntry, defaultMode: number | undefined): DeviceConfig => ({
  socket: d.socket,
  lines: typeof d.lines === 'number' ? d.lines : 8,
  names: d.names,
  socketMode: d.socketMode ?? defaultMode,
  control: d.control,
  ...(d.worker === undefined ? {} : { worker: d.worker }),
  ...(d.chip === undefined
    ? {}
    : { chip: { path: d.chip, lines: Array.isArray(d.lines) ? d.lines : undefined } }),
});

/** Checks the text of a `--config` FILE; `defaultMode` (from --socket-mode) applies where a device has none. */
export function parseConfigFile(file: string, text: string, defaultMode?: number): DeviceConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not JSON: ${(e as Error).message}`);
  }
  const r = configFileSchema.safeParse(json);
  if (!r.success) throw new ConfigError(describe(`${file}: `, r.error));
  return r.data.devices.map((d) => toDeviceConfig(d, defaultMode));
}

/** The `"workers"` of a `--config` FILE already checked by parseConfigFile (undefined if it gives none). */
export function parseConfigWorkers(text: string): number | undefined {
  const r = configFileSchema.safeParse(JSON.parse(text));
  return r.success ? r.data.workers : undefined;
}

/** The flag each device field comes from on the command line. */
const FLAG: Record<string, string> = { lines: '--lines', names: '--names', socketMode: '--socket-mode' };

/** `vgpio serve --lines N --names a,b --socket-mode M`: strings, checked by the same rules as a file entry. */
export const deviceFlagsSchema = z
  .strictObject({
    lines: z
      .string()
      .regex(/^[0-9]+$/, { error: (i) => `expected a line count 1..65535, got ${JSON.stringify(i.input)}` })
      .transform(Number)
      .pipe(lineCount),
    names: z
      .string()
      .transform((s) => s.split(','))
      .pipe(z.array(lineName))
      .optional(),
    socketMode: octalMode.optional(),
  })
  .superRefine((d, ctx) => checkNames(d, ctx, []));

export function parseDeviceFlags(flags: {
  lines: string;
  names?: string;
  socketMode?: string;
}): z.infer<typeof deviceFlagsSchema> {
  const r = deviceFlagsSchema.safeParse(flags);
  if (!r.success)
    throw new ConfigError(
      describe(
        '',
        r.error,
        ([k, ...rest]) => (FLAG[String(k)] ?? String(k)) + jsonPath(rest).replace('(top level)', ''),
      ),
    );
  return r.data;
}

/** `--chip-lines 0-7,12`: offsets and ascending ranges, each offset once, in the order given. */
export function parseChipLines(spec: string): number[] {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(spec))
    throw new ConfigError(
      `--chip-lines: expected offsets and ranges like 0-7,12, got ${JSON.stringify(spec)}`,
    );
  const offsets: number[] = [];
  for (const part of spec.split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    if (b < a) throw new ConfigError(`--chip-lines: range ${part} runs backwards`);
    if (b - a >= 0xffff || offsets.length + b - a + 1 > 0xffff)
      throw new ConfigError('--chip-lines: more than 65535 lines');
    for (let o = a; o <= b; o++) offsets.push(o);
  }
  const r = chipOffsets.superRefine((o, ctx) => checkOffsets(o, ctx, [])).safeParse(offsets);
  if (!r.success) throw new ConfigError(describe('--chip-lines', r.error, () => ''));
  return r.data;
}
