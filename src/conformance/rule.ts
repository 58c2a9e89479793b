import type { InputDriver } from './input-driver.ts';
import type { Probe, ProbeOptions } from './probe.ts';

export type Outcome = 'PASS' | 'FAIL' | 'WARN' | 'SKIP';

/** How strongly the spec asks for the checked behaviour: a FAIL is only ever a MUST broken. */
export type Strength = 'MUST' | 'SHOULD' | 'INFO';

export interface RuleContext {
  /** A fresh connection and driver; the runner closes it after the rule. */
  open(opts?: ProbeOptions): Promise<Probe>;
  drive: InputDriver | null;
  /** How long to wait for something that must happen. */
  replyMs: number;
  /** How long to watch for something that must not happen. */
  quietMs: number;
}

export interface Rule {
  id: string;
  /** Where the spec says it (virtio 1.2 section, or "virtio 1.2 §2.7..."). */
  clause: string;
  strength: Strength;
  title: string;
  needs?: ReadonlyArray<'irq' | 'drive' | 'indirect' | 'event-idx'>;
  /** Returns a detail line on success; throws Verdict for anything else. */
  run(ctx: RuleContext): Promise<string>;
}

/** Ends a rule with an outcome other than PASS. */
export class Verdict extends Error {
  constructor(
    readonly outcome: Exclude<Outcome, 'PASS'>,
    detail: string,
  ) {
    super(detail);
  }
}

export const fail = (detail: string): never => {
  throw new Verdict('FAIL', detail);
};
export const warn = (detail: string): never => {
  throw new Verdict('WARN', detail);
};
export const skip = (detail: string): never => {
  throw new Verdict('SKIP', detail);
};
