/**
 * `vgpio serve --lines N --names a,b --socket-mode M` taken without loading the config schema
 * (src/daemon/serve-config.ts: zod, about 10 MB of a daemon's resident memory). Flags that plainly
 * pass its rules give the same result here; anything else gives null, and parseDeviceFlags checks
 * it and words the error. So the rules stay those of the schema: this only recognises the
 * common valid case.
 */
export interface PlainDeviceFlags {
  lines: number;
  names?: string[];
  socketMode?: number;
}

// 7-bit ASCII without NUL, as the names block carries them (docs/protocol.md §1).
// eslint-disable-next-line no-control-regex
const LINE_NAME = /^[\x01-\x7f]*$/;
const OCTAL_MODE = /^0?[0-7]{3}$/;

export function plainDeviceFlags(flags: {
  lines: string;
  names?: string;
  socketMode?: string;
}): PlainDeviceFlags | null {
  if (!/^[0-9]+$/.test(flags.lines)) return null;
  const lines = Number(flags.lines);
  if (lines < 1 || lines > 0xffff) return null;
  const out: PlainDeviceFlags = { lines };
  if (flags.names !== undefined) {
    const names = flags.names.split(',');
    if (names.length > lines) return null;
    const seen = new Set<string>();
    for (const n of names) {
      if (!LINE_NAME.test(n)) return null;
      if (n === '') continue;
      if (seen.has(n)) return null;
      seen.add(n);
    }
    out.names = names;
  }
  if (flags.socketMode !== undefined) {
    if (!OCTAL_MODE.test(flags.socketMode)) return null;
    out.socketMode = parseInt(flags.socketMode, 8);
  }
  return out;
}
