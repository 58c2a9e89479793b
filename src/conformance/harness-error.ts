import type { RuleResult } from './rule.ts';

/**
 * The check itself could not run: the back-end is not listening, a connection could not be set
 * up, or the input driver (--drive command, control endpoint) failed. Never a rule's result.
 */
export class HarnessError extends Error {
  override name = 'HarnessError';
  /** The rules that completed before the harness failed (set by the runner). */
  results: RuleResult[] = [];
  /** The rule that was running, if any (set by the runner). */
  rule: string | null = null;
}
