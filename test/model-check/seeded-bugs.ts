import { IrqType } from '../../src/protocol/constants.ts';
import { Invariant } from './invariants.ts';
import type { Mutation } from './mutant-tree.ts';
import type { RealSystemOptions } from './real-system.ts';

/** A one-line bug in the device or driver, the invariant it must break, and where to look for it. */
export interface SeededBug extends Mutation {
  invariant: Invariant;
  options: Partial<RealSystemOptions>;
  depth: number;
}

const edgesOnly: Partial<RealSystemOptions> = {
  lines: 1,
  types: [IrqType.EDGE_BOTH],
  ops: ['disable'],
  values: false,
  rings: false,
  reset: false,
};

export const seededBugs: readonly SeededBug[] = [
  {
    name: 'driver queues a second buffer when enabling while the old one is still out',
    invariant: Invariant.oneBuffer,
    file: 'driver/gpio-driver.ts',
    from: 'if (!st.inFlight && !st.handling) this.queueIrqBuffer(line, st);',
    to: 'if (!st.handling) this.queueIrqBuffer(line, st);',
    options: edgesOnly,
    depth: 10,
  },
  {
    name: 'device hands the held buffer back VALID on disable (delivers while disabled)',
    invariant: Invariant.noValidWhenDisabled,
    file: 'device/gpio-device.ts',
    from: 'this.handBackLine(gpio, line, held, IrqStatus.INVALID',
    to: 'this.handBackLine(gpio, line, held, IrqStatus.VALID',
    options: edgesOnly,
    depth: 8,
  },
  {
    name: 'device forgets the latch: an edge while masked is dropped',
    invariant: Invariant.edgeOnce,
    file: 'device/gpio-device.ts',
    from: '        line.latched = true;',
    to: '        line.latched = false;',
    options: edgesOnly,
    depth: 10,
  },
  {
    name: 'device never clears the latch it delivered: the edge is reported again',
    invariant: Invariant.edgeOnce,
    file: 'device/gpio-device.ts',
    from: 'line.latched = false;\n      this.deliver(gpio, line);',
    to: 'this.deliver(gpio, line);',
    options: edgesOnly,
    depth: 10,
  },
  {
    name: 'device does not re-check an active level when the buffer comes back',
    invariant: Invariant.levelRefires,
    file: 'device/gpio-device.ts',
    from: 'if (level !== null && line.levelActive(level)) this.deliver(gpio, line);',
    to: 'void level;',
    options: { ...edgesOnly, types: [IrqType.LEVEL_HIGH] },
    depth: 8,
  },
  {
    name: 'driver drops the per-line request lock',
    invariant: Invariant.repliesInOrder,
    file: 'driver/gpio-driver.ts',
    from: 'if (q.active !== null) {',
    to: 'if (false) {',
    options: { ...edgesOnly, values: true },
    depth: 6,
  },
  {
    name: 'driver re-queues the eventq buffer before the handler finishes',
    invariant: Invariant.handlerExclusive,
    file: 'driver/gpio-driver.ts',
    from: '    st.handling = true;',
    to: '    st.handling = true; this.queueIrqBuffer(line, st);',
    options: edgesOnly,
    depth: 12,
  },
  {
    name: 'driver runs the handler for a VALID that arrives while it is disabling',
    invariant: Invariant.handlerExclusive,
    file: 'driver/gpio-driver.ts',
    from: '      if (status === IrqStatus.VALID && st.enabled && !stale) {',
    to: '      if (status === IrqStatus.VALID) {',
    options: edgesOnly,
    depth: 10,
  },
  {
    name: 'driver takes a VALID interrupt without calling the handler',
    invariant: Invariant.eventsMatchEdges,
    file: 'driver/gpio-driver.ts',
    from: 'void this.dispatch(line, st, now);',
    to: 'void now;',
    options: edgesOnly,
    depth: 8,
  },
  {
    name: 'device forgets what became pending while the rings were stopped',
    invariant: Invariant.edgeOnce,
    file: 'device/gpio-device.ts',
    from: 'this.lines.forEach((line, i) => this.checkPending(i, line));',
    to: 'void this.lines;',
    options: { ...edgesOnly, rings: true },
    depth: 10,
  },
];
