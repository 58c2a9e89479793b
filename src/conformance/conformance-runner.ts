import { Feature, bit } from '../protocol/constants.ts';
import type { VirtioDriverTransport } from '../virtio/driver-transport.ts';
import { ringOptions } from '../virtqueue/split-ring.ts';
import type { InputDriver } from './input-driver.ts';
import { Probe, type ProbeOptions } from './probe.ts';
import { Verdict, type Outcome, type Rule, type Strength } from './rule.ts';
import { rules as allRules } from './rules.ts';

export interface RuleResult {
  id: string;
  clause: string;
  strength: Strength;
  title: string;
  outcome: Outcome;
  detail: string;
  ms: number;
}

export interface ConformanceOptions {
  /** Opens a fresh transport to the device under test (one per rule). */
  connect: () => Promise<VirtioDriverTransport>;
  drive: InputDriver | null;
  replyMs?: number;
  quietMs?: number;
  /** Only rules whose id starts with one of these. */
  only?: string[];
  rules?: Rule[];
}

/** Runs every rule on its own connection; a rule that breaks the device cannot spoil the others. */
export async function runConformance(opts: ConformanceOptions): Promise<RuleResult[]> {
  const offered = await (async () => {
    const t = await opts.connect();
    try {
      return await t.deviceFeatures();
    } finally {
      await t.close();
    }
  })();
  const have = {
    irq: (offered & bit(Feature.GPIO_F_IRQ)) !== 0n,
    drive: opts.drive !== null,
    indirect: ringOptions(offered).indirect,
    'event-idx': ringOptions(offered).eventIdx,
  };
  const why = {
    irq: 'device does not offer VIRTIO_GPIO_F_IRQ',
    drive: 'needs an input driven from outside: vgpio control endpoint, or --drive CMD',
    indirect: 'device does not offer VIRTIO_RING_F_INDIRECT_DESC',
    'event-idx': 'device does not offer VIRTIO_RING_F_EVENT_IDX',
  };
  const results: RuleResult[] = [];
  for (const rule of opts.rules ?? allRules) {
    if (opts.only && !opts.only.some((p) => rule.id.startsWith(p))) continue;
    const base = { id: rule.id, clause: rule.clause, strength: rule.strength, title: rule.title };
    const missing = (rule.needs ?? []).find((n) => !have[n]);
    if (missing) {
      results.push({ ...base, outcome: 'SKIP', detail: why[missing], ms: 0 });
      continue;
    }
    const probes: Probe[] = [];
    const start = performance.now();
    let outcome: Outcome = 'PASS';
    let detail: string;
    try {
      detail = await rule.run({
        open: async (o?: ProbeOptions) => {
          const p = await Probe.open(await opts.connect(), o);
          probes.push(p);
          return p;
        },
        drive: opts.drive,
        replyMs: opts.replyMs ?? 2000,
        quietMs: opts.quietMs ?? 200,
      });
    } catch (e) {
      if (e instanceof Verdict) {
        outcome = e.outcome;
        // A SHOULD rule never FAILs: not doing what the spec recommends is a warning.
        if (outcome === 'FAIL' && rule.strength !== 'MUST') outcome = 'WARN';
      } else outcome = rule.strength === 'MUST' ? 'FAIL' : 'WARN';
      detail = (e as Error).message;
    }
    for (const p of probes) await p.close().catch(() => {});
    results.push({ ...base, outcome, detail, ms: Math.round(performance.now() - start) });
  }
  return results;
}

export function formatResults(results: readonly RuleResult[]): string {
  const rows = [['RULE', 'RESULT', 'LEVEL', 'CLAUSE', 'DETAIL']];
  for (const r of results) rows.push([r.id, r.outcome, r.strength, r.clause, r.detail]);
  const widths = rows[0].map((_, i) => (i === 4 ? 0 : Math.max(...rows.map((r) => r[i].length))));
  const lines = rows.map((r) => r.map((c, i) => (i === 4 ? c : c.padEnd(widths[i]))).join('  '));
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  lines.push(
    '',
    `${count('PASS')} passed, ${count('FAIL')} failed, ${count('WARN')} warnings, ${count('SKIP')} skipped`,
  );
  return lines.join('\n') + '\n';
}
