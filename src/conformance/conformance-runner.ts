import { Feature, bit } from '../protocol/constants.ts';
import type { VirtioDriverTransport } from '../virtio/driver-transport.ts';
import { ringOptions } from '../virtqueue/split-ring.ts';
import { HarnessError } from './harness-error.ts';
import type { InputDriver } from './input-driver.ts';
import { Probe, type ProbeOptions } from './probe.ts';
import { Verdict, type Outcome, type Rule, type RuleResult } from './rule.ts';
import { rules as allRules } from './rules/index.ts';

export type { RuleResult } from './rule.ts';

export interface ConformanceOptions {
  /**
   * Opens a fresh transport to the device under test (one per rule). Any error it throws is a
   * HarnessError: the run stops, it is not a rule's result.
   */
  connect: () => Promise<VirtioDriverTransport>;
  drive: InputDriver | null;
  replyMs?: number;
  quietMs?: number;
  /** Only rules whose id starts with one of these. */
  only?: readonly string[];
  rules?: readonly Rule[];
}

/** The rules whose id starts with one of the prefixes (all of them without prefixes). */
export function selectRules(only?: readonly string[], from: readonly Rule[] = allRules): Rule[] {
  return from.filter((r) => !only || only.some((p) => r.id.startsWith(p)));
}

async function opened<T>(what: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    if (e instanceof HarnessError) throw e;
    throw new HarnessError(`${what}: ${(e as Error).message}`);
  }
}

/**
 * Runs every rule on its own connection; a rule that breaks the device cannot spoil the others.
 * Throws a HarnessError (holding the results so far) when a connection cannot be opened or an
 * input cannot be driven.
 */
export async function runConformance(opts: ConformanceOptions): Promise<RuleResult[]> {
  const offered = await opened('cannot read the device features', async () => {
    const t = await opts.connect();
    try {
      return await t.deviceFeatures();
    } finally {
      await t.close();
    }
  });
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
  for (const rule of selectRules(opts.only, opts.rules)) {
    const base = {
      id: rule.id,
      clause: rule.clause,
      quote: rule.quote,
      strength: rule.strength,
      title: rule.title,
    };
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
          const p = await opened('cannot open a connection', async () => Probe.open(await opts.connect(), o));
          probes.push(p);
          return p;
        },
        drive: opts.drive,
        replyMs: opts.replyMs ?? 2000,
        quietMs: opts.quietMs ?? 200,
      });
    } catch (e) {
      if (e instanceof HarnessError) {
        for (const p of probes) await p.close().catch(() => {});
        e.results = results;
        e.rule = rule.id;
        throw e;
      }
      if (e instanceof Verdict) {
        outcome = e.outcome;
        // Only a MUST broken FAILs: a rule about a SHOULD (or a choice) that does not hold WARNs.
        if (outcome === 'FAIL' && !e.must && rule.strength !== 'MUST') outcome = 'WARN';
      } else outcome = rule.strength === 'MUST' ? 'FAIL' : 'WARN';
      detail = (e as Error).message;
    }
    for (const p of probes) await p.close().catch(() => {});
    results.push({ ...base, outcome, detail, ms: Math.round(performance.now() - start) });
  }
  return results;
}

/** Breaks text into lines of at most `width` characters, at spaces where it can. */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    for (let w = word; w.length > 0;) {
      const room = line ? width - line.length - 1 : width;
      if (w.length <= room) {
        line = line ? `${line} ${w}` : w;
        w = '';
      } else if (line) {
        out.push(line);
        line = '';
      } else {
        out.push(w.slice(0, width));
        w = w.slice(width);
      }
    }
  }
  if (line || out.length === 0) out.push(line);
  return out;
}

/**
 * The results as a table no wider than `width` columns: rule, result, level and the spec's words
 * on the first line(s), what was seen indented below.
 */
export function formatResults(results: readonly RuleResult[], width = 100): string {
  const idW = Math.max(4, ...results.map((r) => r.id.length));
  const head = (a: string, b: string, c: string) => `${a.padEnd(idW)}  ${b.padEnd(6)}  ${c.padEnd(6)}  `;
  const indent = head('', '', '').length;
  const lines = [`${head('RULE', 'RESULT', 'LEVEL')}CLAUSE (virtio 1.2) AND WORDS`];
  for (const r of results) {
    const where = `${r.clause.replace(/^virtio 1\.2 /, '')} ${r.quote}`;
    wrap(where, width - indent).forEach((l, i) =>
      lines.push((i === 0 ? head(r.id, r.outcome, r.strength) : ' '.repeat(indent)) + l),
    );
    for (const l of wrap(r.detail, width - 4)) lines.push(`    ${l}`);
  }
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  lines.push(
    '',
    `${count('PASS')} passed, ${count('FAIL')} failed, ${count('WARN')} warnings, ${count('SKIP')} skipped`,
  );
  return lines.join('\n') + '\n';
}
