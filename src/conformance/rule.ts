import type { InputDriver } from './input-driver.ts';
import type { Probe, ProbeOptions } from './probe.ts';

export type Outcome = 'PASS' | 'FAIL' | 'WARN' | 'SKIP';

/**
 * How strongly the spec asks for the checked behaviour. MUST: a device requirement in a "Device
 * Requirements" section (virtio 1.2 §5.18.6.9, §5.18.7.3, or the ring's, §2.7.x). SHOULD: a SHOULD
 * there, or a plain "must"/"should"/"shall" in the descriptive text, which is not normative. INFO:
 * the spec leaves the choice to the device; the rule only reports which one it made.
 */
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
  /** Where the spec says it: "virtio 1.2 §5.18.6.9" or a ring section. */
  clause: string;
  /** The spec's words, in short, that set the strength. */
  quote: string;
  strength: Strength;
  title: string;
  needs?: ReadonlyArray<'irq' | 'drive' | 'indirect' | 'event-idx'>;
  /** Returns a detail line on success; throws Verdict for anything else. */
  run(ctx: RuleContext): Promise<string>;
}

export interface RuleResult {
  id: string;
  clause: string;
  quote: string;
  strength: Strength;
  title: string;
  outcome: Outcome;
  detail: string;
  ms: number;
}

/** Ends a rule with an outcome other than PASS. */
export class Verdict extends Error {
  constructor(
    readonly outcome: Exclude<Outcome, 'PASS'>,
    detail: string,
    /** A FAIL that stands whatever the rule's own strength: a MUST broken on the way. */
    readonly must = false,
  ) {
    super(detail);
  }
}

/** The rule's own claim does not hold: FAIL for a MUST rule, WARN for the others. */
export const fail = (detail: string): never => {
  throw new Verdict('FAIL', detail);
};
/** A MUST broken while checking something else (`clause` names it): FAIL in any rule. */
export const failMust = (detail: string, clause: string): never => {
  throw new Verdict('FAIL', `${detail} (${clause})`, true);
};
export const warn = (detail: string): never => {
  throw new Verdict('WARN', detail);
};
export const skip = (detail: string): never => {
  throw new Verdict('SKIP', detail);
};
