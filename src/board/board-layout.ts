import type { BoardSpec, PeripheralSpec } from './board-schema.ts';

/** A line reference resolved: the device's index in the board's devices, and the offset. */
export interface ResolvedLine {
  device: number;
  line: number;
}

/** A problem with a board definition, at a JSON path like `wires[0].to[1]`. */
export interface BoardIssue {
  path: string;
  pathParts: Array<string | number>;
  message: string;
}

/** Resolves "device:line" against the board's devices, or says why it does not. */
export function resolveRef(spec: Pick<BoardSpec, 'devices'>, ref: string): ResolvedLine | string {
  const colon = ref.indexOf(':');
  const deviceName = ref.slice(0, colon);
  const linePart = ref.slice(colon + 1);
  const device = spec.devices.findIndex((d) => d.name === deviceName);
  if (device < 0)
    return `no device ${JSON.stringify(deviceName)} for ${JSON.stringify(ref)} (devices: ${spec.devices.map((d) => d.name).join(', ')})`;
  const d = spec.devices[device];
  if (/^\d+$/.test(linePart)) {
    const line = Number(linePart);
    if (line >= d.lines)
      return `no line ${line} on ${deviceName} (it has ${d.lines} lines: 0..${d.lines - 1})`;
    return { device, line };
  }
  const line = (d.names ?? []).indexOf(linePart);
  if (line < 0 || linePart === '') return `no line named ${JSON.stringify(linePart)} on ${deviceName}`;
  return { device, line };
}

/** Every line a peripheral uses, by role. */
export function rolesOf(spec: PeripheralSpec): Map<string, string> {
  switch (spec.type) {
    case 'button':
    case 'clock':
    case 'pattern':
      return new Map([['line', spec.line]]);
    case 'follower':
      return new Map([
        ['from', spec.from],
        ['to', spec.to],
      ]);
    case 'encoder':
      return new Map([
        ['a', spec.a],
        ['b', spec.b],
      ]);
    case 'module':
      return new Map(Object.entries(spec.lines));
  }
}

/** The roles a built-in drives (a user module's drivers appear when it first sets a line). */
export function drivenRoles(spec: PeripheralSpec): string[] {
  switch (spec.type) {
    case 'button':
    case 'clock':
    case 'pattern':
      return ['line'];
    case 'follower':
      return ['to'];
    case 'encoder':
      return ['a', 'b'];
    case 'module':
      return [];
  }
}

const jsonPath = (parts: ReadonlyArray<string | number>): string =>
  parts.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');

/**
 * The cross-references of a board: every line reference resolves, a line sits on at most one
 * shared net, a line that is not on a shared net has at most one driver (a wire's far end or a
 * built-in peripheral), and peripheral names are unique.
 */
export function boardIssues(spec: BoardSpec): BoardIssue[] {
  const issues: BoardIssue[] = [];
  const add = (pathParts: Array<string | number>, message: string) =>
    issues.push({ path: jsonPath(pathParts), pathParts, message });
  const seenDevices = new Set<string>();
  spec.devices.forEach((d, i) => {
    if (seenDevices.has(d.name))
      add(
        ['devices', i, 'name'],
        `expected a device name of its own: ${JSON.stringify(d.name)} is used twice`,
      );
    seenDevices.add(d.name);
  });
  const at = (ref: string, path: Array<string | number>): string | null => {
    const r = resolveRef(spec, ref);
    if (typeof r === 'string') {
      add(path, r);
      return null;
    }
    return `${r.device}:${r.line}`;
  };
  spec.devices.forEach((d, i) => {
    for (const ref of Object.keys(d.pull ?? {})) at(`${d.name}:${ref}`, ['devices', i, 'pull', ref]);
  });
  const shared = new Map<string, string>();
  (spec.nets ?? []).forEach((n, i) =>
    n.lines.forEach((ref, j) => {
      const k = at(ref, ['nets', i, 'lines', j]);
      if (k === null) return;
      const other = shared.get(k);
      if (other)
        add(['nets', i, 'lines', j], `expected a line on one shared net only: ${ref} is also on ${other}`);
      else shared.set(k, `nets[${i}]`);
    }),
  );
  const drivers = new Map<string, string>();
  const driven = (ref: string, path: Array<string | number>, what: string) => {
    const k = at(ref, path);
    if (k === null || shared.has(k)) return;
    const other = drivers.get(k);
    if (other)
      add(
        path,
        `${ref} is already driven by ${other}: one driver per line, or put the lines on a shared net ("nets") for open-drain`,
      );
    else drivers.set(k, what);
  };
  (spec.wires ?? []).forEach((w, i) => {
    at(w.from, ['wires', i, 'from']);
    if (Array.isArray(w.to)) w.to.forEach((ref, j) => driven(ref, ['wires', i, 'to', j], `wires[${i}]`));
    else driven(w.to, ['wires', i, 'to'], `wires[${i}]`);
  });
  const names = new Map<string, number>();
  (spec.peripherals ?? []).forEach((p, i) => {
    const name = p.name ?? `${p.type}${i}`;
    if (names.has(name))
      add(
        ['peripherals', i, 'name'],
        `expected a peripheral name of its own: ${JSON.stringify(name)} is also peripherals[${names.get(name)}]`,
      );
    else names.set(name, i);
    const driving = new Set(drivenRoles(p));
    for (const [role, ref] of rolesOf(p)) {
      const path = ['peripherals', i, ...(p.type === 'module' ? ['lines', role] : [role])];
      if (driving.has(role)) driven(ref, path, `peripherals[${i}] (${p.type} ${name})`);
      else at(ref, path);
    }
  });
  return issues;
}
