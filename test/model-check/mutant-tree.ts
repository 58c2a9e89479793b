import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceRoot } from './subjects.ts';

/** A seeded bug: one line of the device or driver, replaced. */
export interface Mutation {
  name: string;
  /** File under src/. */
  file: string;
  from: string;
  to: string;
}

/**
 * Copies src/ to a temporary directory and applies one mutation to the copy (tsx loads the
 * .ts files from there). `from` must occur exactly once, so a mutation that no longer applies
 * to the current source fails loudly instead of testing nothing.
 */
export function mutantTree(m: Mutation): { root: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-mutant-'));
  const root = join(dir, 'src');
  cpSync(sourceRoot, root, { recursive: true });
  const path = join(root, m.file);
  const text = readFileSync(path, 'utf8');
  const at = text.indexOf(m.from);
  if (at < 0 || text.indexOf(m.from, at + 1) >= 0)
    throw new Error(
      `mutation "${m.name}": ${JSON.stringify(m.from)} must occur exactly once in src/${m.file}`,
    );
  writeFileSync(path, text.slice(0, at) + m.to + text.slice(at + m.from.length));
  return { root, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
