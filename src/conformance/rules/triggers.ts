// Edge and level triggers: delivery, filtering, latching while masked (virtio 1.2 §5.18.6.6,
// §5.18.6.9, §5.18.7.1).
import { IrqStatus, IrqType } from '../../protocol/constants.ts';
import { within } from '../probe.ts';
import { warn, type Rule } from '../rule.ts';
import { LINE, S, armedLine, disable, drive, enable, expectNoInterrupt, expectReturn } from './rule-steps.ts';

export const irqEdge: Rule = {
  id: 'irq.edge',
  clause: S('6.6'),
  quote: 'edge: "the device should latch ... and notify it to the driver once ... unmasked"',
  strength: 'SHOULD',
  title: 'rising edge on an armed line → VALID, used length 1',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
    const buf = p.eventBuffer(LINE);
    await expectNoInterrupt(ctx, buf, 'before any edge');
    await drive(ctx, LINE, 1);
    await expectReturn(ctx, buf, IrqStatus.VALID, 'rising edge');
    await drive(ctx, LINE, 0);
    return 'VALID';
  },
};

export const irqEdgeFilter: Rule = {
  id: 'irq.edge-filter',
  clause: S('6.6'),
  quote: 'the trigger type names the edge; no MUST about the other one',
  strength: 'SHOULD',
  title: 'EDGE_RISING ignores falling edges; EDGE_FALLING ignores rising ones',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_RISING, 1);
    let buf = p.eventBuffer(LINE);
    await drive(ctx, LINE, 0);
    await expectNoInterrupt(ctx, buf, 'falling edge with EDGE_RISING');
    await drive(ctx, LINE, 1);
    await expectReturn(ctx, buf, IrqStatus.VALID, 'rising edge with EDGE_RISING');
    await disable(ctx, p);
    await enable(ctx, p, IrqType.EDGE_FALLING);
    buf = p.eventBuffer(LINE);
    await drive(ctx, LINE, 0);
    await expectReturn(ctx, buf, IrqStatus.VALID, 'falling edge with EDGE_FALLING');
    buf = p.eventBuffer(LINE);
    await drive(ctx, LINE, 1);
    await expectNoInterrupt(ctx, buf, 'rising edge with EDGE_FALLING');
    await drive(ctx, LINE, 0);
    await expectReturn(ctx, buf, IrqStatus.VALID, 'second falling edge');
    return 'rising/falling filtered';
  },
};

export const irqEdgeBoth: Rule = {
  id: 'irq.edge-both',
  clause: S('6.6'),
  quote: 'EDGE_BOTH: the edge trigger, both ways ("should ... notify")',
  strength: 'SHOULD',
  title: 'EDGE_BOTH fires on rising and falling edges',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_BOTH, 0);
    await drive(ctx, LINE, 1);
    await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'rising (latched)');
    const buf = p.eventBuffer(LINE);
    await drive(ctx, LINE, 0);
    await expectReturn(ctx, buf, IrqStatus.VALID, 'falling');
    return 'both edges';
  },
};

export const irqEdgeLatched: Rule = {
  id: 'irq.edge-latched',
  clause: S('6.9'),
  quote: '"MUST latch an edge interrupt if the interrupt is enabled but still masked"',
  strength: 'MUST',
  title: 'edge while enabled but masked is reported at unmask',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
    await drive(ctx, LINE, 1);
    await drive(ctx, LINE, 0);
    await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'unmask after a masked edge');
    return 'VALID at unmask';
  },
};

export const irqEdgeCoalesced: Rule = {
  id: 'irq.edge-coalesced',
  clause: S('7.1'),
  quote: '"an interrupt was latched earlier, the device shall notify" (one latch; descriptive)',
  strength: 'SHOULD',
  title: 'several edges while masked are reported once',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
    for (let i = 0; i < 3; i++) {
      await drive(ctx, LINE, 1);
      await drive(ctx, LINE, 0);
    }
    await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'unmask after 3 masked edges');
    const again = await within(p.eventBuffer(LINE), ctx.quietMs);
    if (again?.data[0] === IrqStatus.VALID)
      warn('a second VALID for edges that happened in one masked period');
    return 'one VALID for 3 masked edges';
  },
};

export const irqLatchDropped: Rule = {
  id: 'irq.latch-dropped',
  clause: S('6.9'),
  quote: '"MUST discard any latched interrupt for a GPIO line, once interrupt is disabled"',
  strength: 'MUST',
  title: 'disable drops a latched edge',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.EDGE_RISING, 0);
    await drive(ctx, LINE, 1);
    await drive(ctx, LINE, 0);
    await disable(ctx, p);
    await enable(ctx, p, IrqType.EDGE_RISING);
    const buf = p.eventBuffer(LINE);
    await expectNoInterrupt(ctx, buf, 'unmask after disable dropped the latch');
    await disable(ctx, p);
    return 'no interrupt';
  },
};

export const irqLevel: Rule = {
  id: 'irq.level',
  clause: S('6.6'),
  quote: 'level: "the device should notify ... once the interrupt signal ... is sensed and ... unmasked"',
  strength: 'SHOULD',
  title: 'active level fires at unmask, and again while still active',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.LEVEL_HIGH, 1);
    await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'level high at unmask');
    await expectReturn(ctx, p.eventBuffer(LINE), IrqStatus.VALID, 'still high at the next unmask');
    await drive(ctx, LINE, 0);
    const buf = p.eventBuffer(LINE);
    await expectNoInterrupt(ctx, buf, 'level low with LEVEL_HIGH');
    await drive(ctx, LINE, 1);
    await expectReturn(ctx, buf, IrqStatus.VALID, 'level goes high while armed');
    await drive(ctx, LINE, 0);
    return 'fires while high, quiet while low';
  },
};

export const irqLevelNotLatched: Rule = {
  id: 'irq.level-not-latched',
  clause: S('6.9'),
  quote: '"MUST NOT latch an level interrupt if the interrupt is enabled but still masked"',
  strength: 'MUST',
  title: 'a level that came and went while masked is not reported',
  needs: ['irq', 'drive'],
  async run(ctx) {
    const p = await armedLine(ctx, IrqType.LEVEL_HIGH, 0);
    await drive(ctx, LINE, 1);
    await drive(ctx, LINE, 0);
    const buf = p.eventBuffer(LINE);
    await expectNoInterrupt(ctx, buf, 'unmask after a masked high pulse');
    await disable(ctx, p);
    return 'no interrupt';
  },
};
