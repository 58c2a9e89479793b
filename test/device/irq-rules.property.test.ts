// Model-based test of the per-line interrupt rules (docs/protocol.md §2, D13–D15, R6–R11, §5), run
// through the real driver (GpioDriver.enableIrq/disableIrq/setDirection) over loopback against the
// real device model and simulated wires.
//
// Commands act on one of 3 lines; after each, the loopback settles (interrupts and the device's
// side of a kick are microtasks, the driver kicks once per event-loop turn: event-loop turns pass
// until two go by without a kick) and the system is compared with a small model:
//
//   per line: type (NONE or enabled type), level, latched, pending (a slow handler invocation not
//   yet released), mode (fast / slow handler; every line starts slow), direction.
//   armed  = type ≠ NONE and no invocation pending (the device holds the line's buffer);
//   deliver = the handler is invoked; a fast handler returns at once (for a level type it first
//             clears the source: sets the input inactive), a slow one waits for ack(line);
//   on arm (enable, or the handler finishing while enabled): a latched edge or an active level is
//             delivered at once (§2), else the buffer is held.
//   input change matching an edge type: delivered if armed, else latched (coalesced: one flag);
//   input becoming active for a level type: delivered if armed, never latched;
//   disable / type change / direction NONE: latch dropped, buffer back INVALID if armed.
//
// Checked after every step:
//   - handler invocations during the step (the line of each, in order) equal the model's
//     deliveries: each edge while enabled is reported once, edges while masked coalesce into one
//     report after unmask, a level still active after unmask fires again;
//   - device snapshot (type, armed, latch, direction, counters) and driver state (irqType,
//     irqArmed) equal the model;
//   - never a second eventq buffer for a line (device side at arrival, driver side in flight);
//   - no VALID hand-back for a line whose disable completed; no driver 'violation';
//   - at most one request per line in a requestq kick, and the device handled each line's requests
//     in the order the driver issued them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { GpioDriver } from '../../src/driver/gpio-driver.ts';
import {
  Direction,
  IrqStatus,
  IrqType,
  MessageType,
  REQUEST_QUEUE,
  irqTypeName,
  isEdgeType,
  isLevelType,
} from '../../src/protocol/constants.ts';
import { openLoopbackChip, type LoopbackChip } from '../../src/compose/loopback-chip.ts';
import type { DriverQueue } from '../../src/virtqueue/driver-queue.ts';
import { settle } from '../driver/helpers.ts';

const NLINES = 3;
const NUM_RUNS = Number(process.env.VGPIO_PROPERTY_RUNS ?? 1000);
const STORM = 200; // hand-backs in one step that can only be a re-queue loop

type Level = 0 | 1;
type Mode = 'fast' | 'slow';

interface LineModel {
  type: IrqType;
  level: Level;
  latched: boolean;
  pending: boolean;
  mode: Mode;
  direction: Direction;
  counters: { edges: number; delivered: number; latched: number; coalesced: number; invalid: number };
}

interface Model {
  lines: LineModel[];
  /** Handler invocations (line numbers) the current step should produce. */
  step: number[];
}

const newModel = (): Model => ({
  lines: Array.from({ length: NLINES }, () => ({
    type: IrqType.NONE,
    level: 0,
    latched: false,
    pending: false,
    mode: 'slow',
    direction: Direction.NONE,
    counters: { edges: 0, delivered: 0, latched: 0, coalesced: 0, invalid: 0 },
  })),
  step: [],
});

const isArmed = (s: LineModel) => s.type !== IrqType.NONE && !s.pending;
const levelActive = (t: IrqType, v: Level) =>
  (t === IrqType.LEVEL_HIGH && v === 1) || (t === IrqType.LEVEL_LOW && v === 0);
const edgeMatches = (t: IrqType, from: Level, to: Level) =>
  from !== to && (t & IrqType.EDGE_BOTH & (to === 1 ? IrqType.EDGE_RISING : IrqType.EDGE_FALLING)) !== 0;
const inactiveLevel = (t: IrqType): Level => (t === IrqType.LEVEL_HIGH ? 0 : 1);

/** The handler runs (the buffer came back VALID to an enabled driver line). */
function deliver(m: Model, l: number): void {
  const s = m.lines[l];
  s.counters.delivered++;
  m.step.push(l);
  if (s.mode === 'slow') {
    s.pending = true;
    return;
  }
  if (isLevelType(s.type)) s.level = inactiveLevel(s.type); // the fast handler clears the source
  arm(m, l);
}

/** The driver queues the line's buffer: latched edges and active levels fire at once. */
function arm(m: Model, l: number): void {
  const s = m.lines[l];
  if (isEdgeType(s.type) && s.latched) {
    s.latched = false;
    deliver(m, l);
  } else if (isLevelType(s.type) && levelActive(s.type, s.level)) {
    deliver(m, l);
  }
}

/** The device's input changes. Returns whether the device handed the buffer back VALID. */
function modelInput(m: Model, l: number, v: Level, driverEnabled = true): boolean {
  const s = m.lines[l];
  if (s.level === v) return false;
  const from = s.level;
  s.level = v;
  const fire = () => {
    if (driverEnabled) deliver(m, l);
    else s.counters.delivered++; // VALID reaches a driver that is disabling: dropped
  };
  if (edgeMatches(s.type, from, v)) {
    s.counters.edges++;
    if (isArmed(s)) {
      fire();
      return true;
    }
    if (s.latched) s.counters.coalesced++;
    else s.counters.latched++;
    s.latched = true;
  } else if (levelActive(s.type, v) && isArmed(s)) {
    fire();
    return true;
  }
  return false;
}

function modelDisable(m: Model, l: number, stillArmed = isArmed(m.lines[l])): void {
  const s = m.lines[l];
  if (s.type !== IrqType.NONE && stillArmed) s.counters.invalid++;
  s.type = IrqType.NONE;
  s.latched = false;
}

// --- the real system ---

interface Gate {
  promise: Promise<void>;
  open: () => void;
}

class Real {
  readonly modes: Mode[] = Array.from({ length: NLINES }, () => 'slow');
  readonly gates: Gate[][] = Array.from({ length: NLINES }, () => []);
  /** Handler invocations in the current step. */
  step: number[] = [];
  readonly problems: string[] = [];
  readonly disableDone: boolean[] = Array.from({ length: NLINES }, () => true);
  readonly issued: string[][] = Array.from({ length: NLINES }, () => []);
  readonly handled: string[][] = Array.from({ length: NLINES }, () => []);
  private handBacksThisStep = 0;
  private batch: number[] | null = null;

  private constructor(readonly lb: LoopbackChip) {
    const { device, transport } = lb;
    const driver = this.driver;
    driver.on('violation', (msg) => this.problems.push(`driver violation: ${msg}`));
    device.on('irq', (line, status) => {
      if (status === IrqStatus.VALID && this.disableDone[line])
        this.problems.push(`VALID for line ${line} after its disable completed`);
      if (++this.handBacksThisStep === STORM) {
        this.problems.push(`${STORM} eventq hand-backs in one step: a re-queue loop`);
        void transport.close(); // stop the microtask loop so the failure can be reported
      }
    });
    const queueEventBuffer = device.queueEventBuffer.bind(device);
    device.queueEventBuffer = (gpio, token) => {
      if (gpio !== null && device.snapshot()[gpio]?.armed)
        this.problems.push(`second eventq buffer for line ${gpio} while one is held`);
      queueEventBuffer(gpio, token);
    };
    const handle = device.handle.bind(device);
    device.handle = (req) => {
      if (req.type !== MessageType.GET_LINE_NAMES) {
        this.handled[req.gpio]?.push(`${req.type}:${req.value}`);
        if (this.batch?.includes(req.gpio))
          this.problems.push(`two requests for line ${req.gpio} in flight in one kick`);
        this.batch?.push(req.gpio);
      }
      return handle(req);
    };
    const kick = transport.device.kick.bind(transport.device);
    transport.device.kick = (i) => {
      if (i !== REQUEST_QUEUE) return kick(i);
      this.batch = [];
      try {
        kick(i);
      } finally {
        this.batch = null;
      }
    };
    // Every request these commands make goes through call() (enable, disable, direction).
    const call = driver.call.bind(driver);
    driver.call = (type, gpio, value) => {
      this.issued[gpio]?.push(`${type}:${value ?? 0}`);
      return call(type, gpio, value);
    };
  }

  static async open(): Promise<Real> {
    return new Real(await openLoopbackChip({ lines: NLINES }));
  }

  get driver(): GpioDriver {
    return this.lb.chip.driver;
  }

  /** The handler every enable installs: records, then returns at once or waits for ack(). */
  readonly handler = (line: number): void | Promise<void> => {
    this.step.push(line);
    if (this.modes[line] === 'slow') {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      this.gates[line].push({ promise, open });
      return promise;
    }
    const t = this.driver.irqType(line);
    if (isLevelType(t)) this.lb.lines.setInput(line, inactiveLevel(t));
  };

  /** Runs one step's action, lets every microtask chain finish, fails instead of hanging. */
  async act(what: string, action: () => Promise<unknown> | void): Promise<void> {
    this.step = [];
    this.handBacksThisStep = 0;
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: did not complete within 2 s`)), 2000);
    });
    try {
      await Promise.race([Promise.resolve().then(action), stuck]);
      await Promise.race([settle(this.lb), stuck]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    for (const gs of this.gates) for (const g of gs) g.open();
    await this.lb.chip.close().catch(() => {});
  }
}

function check(m: Model, r: Real, what: string): void {
  assert.deepEqual(r.problems, [], what);
  assert.deepEqual(r.step, m.step, `${what}: handler invocations (lines) in this step`);
  const snap = r.lb.device.snapshot();
  // The driver keeps at most one buffer per line in flight; after settling, exactly the armed ones.
  const inFlight = (r.driver as unknown as { eventq: DriverQueue<number> }).eventq.tokens().sort();
  const expectArmed = m.lines.flatMap((s, l) => (isArmed(s) ? [l] : []));
  assert.deepEqual(inFlight, expectArmed, `${what}: eventq buffers in flight`);
  m.lines.forEach((s, l) => {
    const d = snap[l];
    const at = `${what}: line ${l}`;
    assert.deepEqual(
      {
        type: irqTypeName(d.irqType),
        armed: d.armed,
        latched: d.latched,
        direction: d.direction,
        value: d.value,
      },
      {
        type: irqTypeName(s.type),
        armed: isArmed(s),
        latched: s.latched,
        direction: s.direction,
        value: s.level,
      },
      `${at}: device state`,
    );
    assert.deepEqual(d.counters, s.counters, `${at}: device counters`);
    assert.equal(irqTypeName(r.driver.irqType(l)), irqTypeName(s.type), `${at}: driver irqType`);
    assert.equal(r.driver.irqArmed(l), isArmed(s), `${at}: driver irqArmed`);
    assert.deepEqual(r.handled[l], r.issued[l], `${at}: requests handled in issue order`);
  });
}

type Cmd = fc.AsyncCommand<Model, Real>;

/** Shared shape: apply to the model, act on the real system, compare. */
function command(
  name: string,
  applies: (m: Readonly<Model>) => boolean,
  model: (m: Model) => void,
  real: (r: Real) => Promise<unknown> | void,
): Cmd {
  return {
    check: applies,
    async run(m, r) {
      m.step = [];
      model(m);
      await r.act(name, () => real(r));
      check(m, r, name);
    },
    toString: () => name,
  };
}

// --- commands ---

const setInput = (l: number, v: Level) =>
  command(
    `setInput(${l},${v})`,
    () => true,
    (m) => void modelInput(m, l, v),
    (r) => r.lb.lines.setInput(l, v),
  );

const enable = (l: number, t: IrqType) =>
  command(
    `enable(${l},${irqTypeName(t)})`,
    () => true,
    (m) => {
      const s = m.lines[l];
      if (s.type === t) return; // the driver sees it is on already
      if (s.type !== IrqType.NONE) modelDisable(m, l); // type change: NONE first
      s.type = t;
      s.latched = false;
      s.direction = Direction.IN; // an IRQ on a NONE line makes it an input
      if (!s.pending) arm(m, l);
    },
    async (r) => {
      r.disableDone[l] = false;
      await r.driver.enableIrq(l, t, r.handler);
    },
  );

const disable = (l: number) =>
  command(
    `disable(${l})`,
    () => true,
    (m) => modelDisable(m, l),
    async (r) => {
      await r.driver.disableIrq(l);
      r.disableDone[l] = true;
    },
  );

const directionNone = (l: number) =>
  command(
    `directionNone(${l})`,
    () => true,
    (m) => {
      modelDisable(m, l);
      m.lines[l].direction = Direction.NONE;
    },
    async (r) => {
      await r.driver.setDirection(l, Direction.NONE);
      r.disableDone[l] = true;
    },
  );

/** disableIrq() is called and the input changes before the device has seen SET_IRQ_TYPE NONE. */
const disableRacingInput = (l: number, v: Level) =>
  command(
    `disableRacingInput(${l},${v})`,
    () => true,
    (m) => {
      const wasArmed = isArmed(m.lines[l]);
      const fired = modelInput(m, l, v, false);
      modelDisable(m, l, wasArmed && !fired);
    },
    async (r) => {
      const p = r.driver.disableIrq(l);
      r.lb.lines.setInput(l, v);
      await p;
      r.disableDone[l] = true;
    },
  );

/** Handlers invoked from now on return at once (fast) or wait for ack(line) (slow). */
const handlerMode = (l: number, mode: Mode) =>
  command(
    `${mode}Handler(${l})`,
    (m) => m.lines[l].mode !== mode,
    (m) => void (m.lines[l].mode = mode),
    (r) => void (r.modes[l] = mode),
  );

/** The pending slow handler invocation finishes (its promise resolves): the ack, i.e. the unmask. */
const ack = (l: number) =>
  command(
    `ack(${l})`,
    (m) => m.lines[l].pending,
    (m) => {
      const s = m.lines[l];
      s.pending = false;
      if (s.type !== IrqType.NONE) arm(m, l);
    },
    (r) => {
      const g = r.gates[l].shift();
      assert.ok(g, `line ${l} has no handler waiting`);
      g.open();
    },
  );

const line = fc.nat({ max: NLINES - 1 });
const level = fc.constantFrom<Level>(0, 1);
const irqType = fc.constantFrom<IrqType>(
  IrqType.EDGE_RISING,
  IrqType.EDGE_FALLING,
  IrqType.EDGE_BOTH,
  IrqType.LEVEL_HIGH,
  IrqType.LEVEL_LOW,
);
const setInputArb = fc.tuple(line, level).map(([l, v]) => setInput(l, v));
const enableArb = fc.tuple(line, irqType).map(([l, t]) => enable(l, t));
const ackArb = line.map(ack);

// Weights by repetition: inputs and acks often, so slow handlers get released and masked lines
// see edges; enough enables that lines are on most of the time.
const modeArb = fc.tuple(line, fc.constantFrom<Mode>('fast', 'slow')).map(([l, m]) => handlerMode(l, m));
const commands = fc.commands(
  [
    ...Array<typeof setInputArb>(4).fill(setInputArb),
    enableArb,
    enableArb,
    line.map(disable),
    line.map(directionNone),
    fc.tuple(line, level).map(([l, v]) => disableRacingInput(l, v)),
    modeArb,
    ...Array<typeof ackArb>(3).fill(ackArb),
  ],
  { maxCommands: 60, size: 'large' },
);

test(
  'per-line IRQ rules hold for random interleavings (driver over loopback)',
  { timeout: 120_000 },
  async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const real = await Real.open();
        try {
          await fc.asyncModelRun(() => ({ model: newModel(), real }), cmds);
        } finally {
          await real.close();
        }
      }),
      { numRuns: NUM_RUNS },
    );
  },
);

/** Runs a fixed command list through the same model and checks. */
async function scenario(cmds: readonly Cmd[]): Promise<void> {
  const real = await Real.open();
  const model = newModel();
  try {
    for (const c of cmds) {
      assert.ok(c.check(model), `${c} does not apply here`);
      await c.run(model, real);
    }
  } finally {
    await real.close();
  }
}

// Known shapes, so the interesting paths are covered whatever the random seed.
const { EDGE_RISING, EDGE_FALLING, EDGE_BOTH, LEVEL_HIGH, LEVEL_LOW } = IrqType;

test('scenario: edges while a slow handler runs coalesce into one report after the ack', async () => {
  await scenario([enable(0, EDGE_BOTH), setInput(0, 1), setInput(0, 0), setInput(0, 1), ack(0), ack(0)]);
});

test('scenario: a level still active after the ack fires again; a fast handler clears it', async () => {
  await scenario([
    setInput(1, 1),
    enable(1, LEVEL_HIGH),
    ack(1),
    handlerMode(1, 'fast'),
    ack(1),
    setInput(1, 1),
  ]);
});

test('scenario: disable racing an edge, direction NONE, type change while masked', async () => {
  await scenario([
    enable(2, EDGE_RISING),
    disableRacingInput(2, 1),
    enable(2, EDGE_FALLING),
    setInput(2, 0),
    enable(2, LEVEL_LOW),
    setInput(2, 1),
    setInput(2, 0),
    directionNone(2),
    ack(2),
    enable(2, LEVEL_LOW),
    ack(2),
  ]);
});

test('the model is strict enough: a wrong expectation fails with a readable step name', async () => {
  // Claim one event too many: the check after setInput must reject it, naming the command.
  const wrong = command(
    'setInput(0,1)',
    () => true,
    (m) => {
      modelInput(m, 0, 1);
      m.step.push(0);
    },
    (r) => r.lb.lines.setInput(0, 1),
  );
  await assert.rejects(scenario([enable(0, EDGE_RISING), wrong]), /setInput\(0,1\): handler invocations/);
});
