import type { ExploredSystem, Violation } from './explorer.ts';
import { Invariant } from './invariants.ts';

/**
 * The V3 design of the Linux driver's IRQ support, as a plain-data model (the counter-model).
 * mask/unmask only set flags; the device learns of them when a later `sync` step runs
 * (.irq_bus_sync_unlock(), which may sleep); until then it may raise the line again.
 *
 * Steps: `edge Ln` (the host line changes; the device notes it), `irq Ln` (the device raises
 * the line's interrupt: one notification per line at a time), `handler Ln start` (the driver
 * takes the interrupt; the IRQ core's one-shot flow masks the line — a flag — and runs the
 * threaded handler; taking the interrupt and masking happen with interrupts off, so they are
 * one step), `handler Ln finish` (the core unmasks, a flag), `sync` (the device learns every
 * line's mask flag).
 *
 * `ack: true` models the review's proposed fix: after raising a line the device waits for a
 * REQ_IRQ_ACK for it, which the driver sends from sync once the handler has finished.
 */
interface Line {
  level: 0 | 1;
  /** An edge the device has seen and not yet raised. */
  devPending: boolean;
  /** The mask as the device last learned it. */
  devMasked: boolean;
  /** Fix only: raised, no REQ_IRQ_ACK yet. */
  devAwaitAck: boolean;
  /** Raised by the device, not yet taken by the driver. */
  irqPending: boolean;
  running: boolean;
  /** The IRQ core's mask flag. */
  coreMasked: boolean;
  /** The flag changed since the last sync. */
  dirty: boolean;
  /** Fix only: the handler finished; the next sync sends REQ_IRQ_ACK. */
  ackDue: boolean;
}

export interface V3Options {
  lines: number;
  ack: boolean;
}

export class V3Model implements ExploredSystem {
  private violated: Violation[] = [];
  private lastLabel = '';

  private constructor(
    private readonly opts: V3Options,
    private readonly lines: Line[],
  ) {}

  static create(opts: V3Options): V3Model {
    return new V3Model(
      opts,
      Array.from({ length: opts.lines }, () => ({
        level: 0,
        devPending: false,
        devMasked: false,
        devAwaitAck: false,
        irqPending: false,
        running: false,
        coreMasked: false,
        dirty: false,
        ackDue: false,
      })),
    );
  }

  enabled(): string[] {
    const out: string[] = [];
    // Edges last: among traces of one length, the first found reads in cause-and-effect order.
    this.lines.forEach((l, i) => {
      if (l.devPending && !l.devMasked && !l.irqPending && !(this.opts.ack && l.devAwaitAck))
        out.push(`irq L${i}`);
      if (l.irqPending) out.push(`handler L${i} start`);
      if (l.running) out.push(`handler L${i} finish`);
    });
    if (this.lines.some((l) => l.dirty || l.ackDue)) out.push('sync');
    this.lines.forEach((_, i) => out.push(`edge L${i}`));
    return out;
  }

  apply(action: string): void {
    this.violated = [];
    this.lastLabel = action;
    if (action === 'sync') {
      const told: string[] = [];
      this.lines.forEach((l, i) => {
        if (l.dirty) told.push(`L${i} ${l.coreMasked ? 'masked' : 'unmasked'}`);
        l.devMasked = l.coreMasked;
        l.dirty = false;
        if (this.opts.ack && l.ackDue) {
          told.push(`REQ_IRQ_ACK L${i}`);
          l.devAwaitAck = false;
          l.ackDue = false;
        }
      });
      this.lastLabel = `sync (${told.join(', ')})`;
      return;
    }
    const m = /^(edge|irq|handler) L(\d+)(?: (start|finish))?$/.exec(action);
    if (!m) throw new Error(`unknown action ${action}`);
    const l = this.lines[Number(m[2])];
    const name = `L${m[2]}`;
    switch (m[3] ?? m[1]) {
      case 'edge':
        l.level = l.level === 0 ? 1 : 0;
        l.devPending = true;
        return;
      case 'irq':
        l.devPending = false;
        l.irqPending = true;
        if (this.opts.ack) l.devAwaitAck = true;
        return;
      case 'start':
        l.irqPending = false;
        if (l.running) this.violated.push({ invariant: Invariant.handlerExclusive, detail: 'RE-ENTERED' });
        else if (l.coreMasked)
          this.violated.push({ invariant: Invariant.handlerExclusive, detail: 'MASKED' });
        if (this.violated.length > 0) {
          this.lastLabel = `handler ${name} start`;
          return;
        }
        l.running = true;
        l.coreMasked = true;
        l.dirty = true;
        this.lastLabel = `handler ${name} start → mask(flag)`;
        return;
      case 'finish':
        l.running = false;
        l.coreMasked = false;
        l.dirty = true;
        if (this.opts.ack) l.ackDue = true;
        this.lastLabel = `handler ${name} finish → unmask(flag)`;
        return;
    }
  }

  violations(): Violation[] {
    return this.violated;
  }

  key(): string {
    return this.lines
      .map((l) =>
        [
          l.level,
          l.devPending,
          l.devMasked,
          l.devAwaitAck,
          l.irqPending,
          l.running,
          l.coreMasked,
          l.dirty,
          l.ackDue,
        ]
          .map(Number)
          .join(''),
      )
      .join('|');
  }

  label(): string {
    return this.lastLabel;
  }

  clone(): V3Model {
    return new V3Model(
      this.opts,
      this.lines.map((l) => ({ ...l })),
    );
  }
}
