import { isAbsolute, resolve as resolvePath } from 'node:path';
import type { Level } from '../device/line-backend.ts';
import { Direction } from '../protocol/constants.ts';
import { BoardLines } from './board-lines.ts';
import { BoardNet, type BoardPin, type NetDriver } from './board-net.ts';
import { BoardScheduler, type Scheduled } from './board-scheduler.ts';
import type { BoardTimerFactory } from './board-timer.ts';
import {
  boardIssues,
  drivenRoles,
  resolveRef,
  rolesOf,
  type BoardIssue,
  type ResolvedLine,
} from './board-layout.ts';
import type { BoardSpec, PeripheralSpec } from './board-schema.ts';
import { createPeripheral } from './builtin-peripherals.ts';
import { Button } from './button.ts';
import { Clock } from './clock.ts';
import { Encoder } from './encoder.ts';
import type { Peripheral, PeripheralIo } from './peripheral-io.ts';
import { UserPeripheral } from './user-peripheral.ts';

/** Where the board logs (the daemon's logger): fields are flat values. */
export type BoardLog = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, string | number | boolean | null | undefined>,
) => void;

/** A board file whose references do not hold together: every issue, each with its JSON path. */
export class BoardError extends Error {
  override name = 'BoardError';
  constructor(readonly issues: readonly BoardIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  }
}

const PULL_LEVEL = { up: 1, down: 0 } as const;
/** Zero-delay propagation deeper than this (a loop of followers) continues on the next timer turn. */
const MAX_SYNC_DEPTH = 32;

interface RunningPeripheral {
  readonly name: string;
  readonly spec: PeripheralSpec;
  readonly peripheral: Peripheral;
  readonly roles: ReadonlyMap<string, BoardPin>;
  stopped: boolean;
}

/**
 * The board around the chips: devices' simulated lines, the wires and shared nets between them,
 * pulls, and the peripherals that drive and watch lines, all on one scheduler (board time).
 * Build it from a checked definition, hand each device's {@link lines} to its GpioDevice, then
 * {@link start} it. Nothing a peripheral does can throw into the device model: a peripheral that
 * throws is stopped and logged, and the rest of the board keeps running.
 */
export class Board {
  readonly scheduler: BoardScheduler;
  private readonly devices = new Map<string, BoardLines>();
  private readonly nets = new Map<string, BoardNet>();
  private readonly peripherals: RunningPeripheral[] = [];
  private readonly drivers = new Map<string, NetDriver>();
  private readonly pulls = new Map<string, Level>();
  private readonly observers = new Map<string, Array<() => void>>();
  private readonly baseDir: string;
  private depth = 0;
  private started = false;

  private constructor(
    private readonly spec: BoardSpec,
    private readonly log: BoardLog,
    timer?: BoardTimerFactory,
  ) {
    this.baseDir = spec.baseDir ?? process.cwd();
    this.scheduler = new BoardScheduler(
      (e) => this.log('error', 'board callback failed', { error: String(e) }),
      timer,
    );
  }

  /**
   * Builds the board (lines, nets, pulls, drivers); throws a BoardError naming every bad reference.
   * `timer` wakes board time (default: Node timers; the daemon passes the timerfd).
   */
  static create(spec: BoardSpec, log: BoardLog = () => {}, timer?: BoardTimerFactory): Board {
    // A module entry may leave out "type" (as the board file's schema allows).
    const peripherals = spec.peripherals?.map((p) =>
      'module' in p && (p as { type?: string }).type === undefined ? { ...p, type: 'module' as const } : p,
    );
    const normalized = { ...spec, peripherals };
    const issues = boardIssues(normalized);
    if (issues.length > 0) throw new BoardError(issues);
    const b = new Board(normalized, log, timer);
    b.build();
    return b;
  }

  /** A device's lines by its name. */
  lines(device: string): BoardLines {
    const l = this.devices.get(device);
    if (!l) throw new RangeError(`no device ${JSON.stringify(device)} on the board`);
    return l;
  }

  get deviceNames(): string[] {
    return [...this.devices.keys()];
  }

  /** A running peripheral by name (type-specific controls: press, start, position, …). */
  peripheral(name: string): Peripheral | undefined {
    return this.peripherals.find((p) => p.name === name && !p.stopped)?.peripheral;
  }

  /** Every peripheral, with its lines and whether it still runs. */
  describe(): Array<{ name: string; type: string; lines: Record<string, string>; running: boolean }> {
    return this.peripherals.map((p) => ({
      name: p.name,
      type: p.peripheral.type,
      lines: Object.fromEntries([...p.roles].map(([r, pin]) => [r, pin.label])),
      running: !p.stopped,
    }));
  }

  /** The peripheral driving `line` of `device` that answers `kind` (e.g. the button on a line). */
  peripheralOn(device: BoardLines, line: number, type: string): Peripheral | undefined {
    return this.peripherals.find(
      (p) =>
        !p.stopped &&
        p.peripheral.type === type &&
        [...p.roles.values()].some((pin) => pin.lines === device && pin.line === line),
    )?.peripheral;
  }

  /** Starts the peripherals; user modules are loaded (each in its own worker) before this resolves. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await Promise.all(this.peripherals.map((p) => this.startOne(p)));
  }

  async close(): Promise<void> {
    for (const p of this.peripherals) this.stopOne(p);
    this.scheduler.close();
    await Promise.all(
      this.peripherals.map((p) => (p.peripheral instanceof UserPeripheral ? p.peripheral.exited : undefined)),
    );
  }

  // --- building ---

  private build(): void {
    for (const d of this.spec.devices) {
      const lines = new BoardLines(d.name, d.lines, d.names);
      this.devices.set(d.name, lines);
      for (const [ref, pull] of Object.entries(d.pull ?? {})) {
        const line = this.resolve(`${d.name}:${ref}`);
        this.pulls.set(`${d.name}\0${line.line}`, PULL_LEVEL[pull]);
      }
      lines.on('output', (line) => this.changed(lines, line));
      lines.on('direction', (line) => this.changed(lines, line));
      lines.onChange((c) => this.changed(lines, c.line));
    }
    // Shared nets first: a wire or peripheral on one of their lines drives the shared net.
    (this.spec.nets ?? []).forEach((n, i) => {
      const pins = n.lines.map((r) => this.pin(r));
      const net = new BoardNet(pins, PULL_LEVEL[n.pull ?? 'up'], true, (m) => this.log('warn', m));
      for (const p of pins) {
        this.nets.set(key(p), net);
        p.lines.markOpenDrain(p.line);
        // Each line on the net pulls it low while the guest drives it 0 as an output.
        const own = net.addDriver(`nets[${i}]`, null);
        const follow = () => net.drive(own, p.lines.output(p.line));
        this.observe(p, follow);
      }
      net.onLevel(() => pins.forEach((p) => this.changed(p.lines, p.line)));
    });
    // Pull-only lines: a net with no driver (still free to set by hand).
    for (const [k] of this.pulls) if (!this.nets.has(k)) this.netOf(this.pinByKey(k));
    (this.spec.wires ?? []).forEach((w, i) => {
      const from = this.pin(w.from);
      const targets = (Array.isArray(w.to) ? w.to : [w.to]).map((r) => this.pin(r));
      const ends = targets.map((t) => {
        const net = this.netOf(t);
        return { net, driver: net.addDriver(`wires[${i}] from ${w.from}`) };
      });
      const delayMs = w.delayMs ?? 0;
      const carry = (value: Level | null) =>
        this.propagate(() => ends.forEach((e) => e.net.drive(e.driver, value)));
      this.observe(from, () => {
        const value = from.lines.output(from.line);
        if (delayMs === 0) carry(value);
        else this.scheduler.after(delayMs, () => carry(value));
      });
    });
    (this.spec.peripherals ?? []).forEach((spec, i) => {
      const name = spec.name ?? `${spec.type}${i}`;
      const roleRefs = rolesOf(spec);
      const roles = new Map([...roleRefs].map(([role, ref]) => [role, this.pin(ref)]));
      const peripheral =
        spec.type === 'module'
          ? new UserPeripheral(spec, this.modulePath(spec.module), (l, m, f) =>
              this.log(l, m, { peripheral: name, ...f }),
            )
          : createPeripheral(spec, { pullOf: (role) => this.pullOf(roles.get(role)) });
      const run: RunningPeripheral = { name, spec, peripheral, roles, stopped: false };
      this.peripherals.push(run);
      // Lines a built-in drives are claimed now, before any control socket opens.
      for (const role of drivenRoles(spec)) this.driverFor(run, role);
    });
  }

  private modulePath(p: string): string {
    return isAbsolute(p) ? p : resolvePath(this.baseDir, p);
  }

  private resolve(ref: string): ResolvedLine {
    const r = resolveRef(this.spec, ref);
    if (typeof r === 'string') throw new RangeError(r);
    return r;
  }

  private pin(ref: string): BoardPin {
    const r = this.resolve(ref);
    return { lines: this.lines(this.spec.devices[r.device].name), line: r.line, label: ref };
  }

  private pinByKey(k: string): BoardPin {
    const [device, line] = k.split('\0');
    return { lines: this.lines(device), line: Number(line), label: `${device}:${line}` };
  }

  private pullOf(pin: BoardPin | undefined): Level | null {
    if (!pin) return null;
    const net = this.nets.get(key(pin));
    if (net) return net.pull;
    return this.pulls.get(key(pin)) ?? null;
  }

  /** The line's net: its shared net, or a net of its own (created on first use). */
  private netOf(pin: BoardPin): BoardNet {
    const k = key(pin);
    let net = this.nets.get(k);
    if (!net) {
      net = new BoardNet([pin], this.pulls.get(k) ?? null, false, (m) => this.log('warn', m));
      this.nets.set(k, net);
    }
    return net;
  }

  private driverFor(p: RunningPeripheral, role: string): { net: BoardNet; driver: NetDriver } {
    const pin = p.roles.get(role);
    if (!pin)
      throw new RangeError(`${p.name}: no line "${role}" (its lines: ${[...p.roles.keys()].join(', ')})`);
    const net = this.netOf(pin);
    const k = `${p.name}\0${role}`;
    let driver = this.drivers.get(k);
    if (!driver) {
      driver = net.addDriver(`peripheral ${p.name}`);
      this.drivers.set(k, driver);
    }
    return { net, driver };
  }

  // --- running ---

  private async startOne(p: RunningPeripheral): Promise<void> {
    const io = this.ioFor(p);
    try {
      p.peripheral.start(io);
      if (p.peripheral instanceof UserPeripheral) {
        void p.peripheral.exited.then(() => this.stopOne(p));
        await p.peripheral.ready;
      }
      this.attach(p, true);
      this.log('info', 'peripheral started', { peripheral: p.name, type: p.peripheral.type });
    } catch (e) {
      this.fail(p, e);
    }
  }

  private fail(p: RunningPeripheral, e: unknown): void {
    if (p.stopped) return;
    this.log('error', 'peripheral stopped: it failed', {
      peripheral: p.name,
      error: e instanceof Error ? e.message : String(e),
    });
    this.stopOne(p);
  }

  private stopOne(p: RunningPeripheral): void {
    if (p.stopped) return;
    p.stopped = true;
    this.attach(p, false);
    try {
      p.peripheral.stop();
    } catch {
      // stopping must not fail the board
    }
    // A stopped peripheral lets go of its lines.
    for (const role of p.roles.keys()) {
      const d = this.drivers.get(`${p.name}\0${role}`);
      if (d && d.value !== null) this.nets.get(key(p.roles.get(role)!))?.drive(d, null);
    }
  }

  /** Puts a button, clock or encoder on its lines for the control socket (or takes it off). */
  private attach(p: RunningPeripheral, on: boolean): void {
    const { peripheral } = p;
    if (!(peripheral instanceof Button || peripheral instanceof Clock || peripheral instanceof Encoder))
      return;
    for (const [role, pin] of p.roles)
      if (on) pin.lines.attachPeripheral(pin.line, { name: p.name, role, peripheral });
      else pin.lines.detachPeripheral(pin.line, peripheral);
  }

  private ioFor(p: RunningPeripheral): PeripheralIo {
    const guard =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A) => {
        if (p.stopped) return;
        try {
          fn(...a);
        } catch (e) {
          this.fail(p, e);
        }
      };
    const pinOf = (role: string): BoardPin => {
      const pin = p.roles.get(role);
      if (!pin)
        throw new RangeError(`${p.name}: no line "${role}" (its lines: ${[...p.roles.keys()].join(', ')})`);
      return pin;
    };
    const timers: Scheduled[] = [];
    return {
      name: p.name,
      now: () => this.scheduler.now(),
      set: (role, level) => {
        if (p.stopped) return;
        if (level !== 0 && level !== 1 && level !== null)
          throw new TypeError(`${p.name}: set("${role}", ${String(level)}): expected 0, 1 or null`);
        const { net, driver } = this.driverFor(p, role);
        this.propagate(() => net.drive(driver, level));
      },
      level: (role) => this.outside(pinOf(role)),
      onLevel: (role, fn) => {
        const pin = pinOf(role);
        const safe = guard(fn);
        let last = this.outside(pin);
        this.observe(pin, () => {
          const level = this.outside(pin);
          if (level === last) return;
          last = level;
          safe(level, this.scheduler.now());
        });
      },
      after: (ms, fn) => {
        const t = this.scheduler.after(ms, guard(fn));
        timers.push(t);
        return t;
      },
      every: (ms, fn, firstAtMs) => {
        const start =
          firstAtMs === undefined
            ? undefined
            : this.scheduler.startNs + BigInt(Math.round((firstAtMs - ms) * 1e6));
        const t = this.scheduler.every(
          ms,
          guard(() => fn()),
          start,
        );
        timers.push(t);
        return t;
      },
      log: (message) => this.log('info', message, { peripheral: p.name }),
    };
  }

  /** What the board sees on a line: the guest's output level, else the level applied to the input. */
  private outside(pin: BoardPin): Level {
    return pin.lines.output(pin.line) ?? pin.lines.input(pin.line);
  }

  /**
   * Calls `fn` when the line's outside level changes, or the line starts or stops being a guest
   * output (an output that stops driving lets its wire go).
   */
  private observe(pin: BoardPin, fn: () => void): void {
    const k = key(pin);
    const state = () =>
      `${pin.lines.direction(pin.line) === Direction.OUT ? 'out' : 'in'}${this.outside(pin)}`;
    let last = state();
    let list = this.observers.get(k);
    if (!list) this.observers.set(k, (list = []));
    list.push(() => {
      const now = state();
      if (now === last) return;
      last = now;
      fn();
    });
  }

  private changed(lines: BoardLines, line: number): void {
    const list = this.observers.get(`${lines.deviceName}\0${line}`);
    if (list) this.propagate(() => list.forEach((f) => f()));
  }

  private propagate(fn: () => void): void {
    if (this.depth >= MAX_SYNC_DEPTH) {
      this.scheduler.at(process.hrtime.bigint(), fn);
      return;
    }
    this.depth++;
    try {
      fn();
    } finally {
      this.depth--;
    }
  }
}

const key = (p: BoardPin): string => `${p.lines.deviceName}\0${p.line}`;
