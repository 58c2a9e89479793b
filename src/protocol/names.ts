import { ProtocolError } from './errors.ts';

/** Names block: one NUL-terminated 7-bit ASCII string per line; unnamed lines are a lone NUL. */
export function encodeNames(names: readonly string[]): Uint8Array {
  if (names.every((n) => n === '')) return new Uint8Array(0);
  const seen = new Set<string>();
  for (const n of names) {
    if (n === '') continue;
    // eslint-disable-next-line no-control-regex
    if (!/^[\x01-\x7f]+$/.test(n))
      throw new ProtocolError('names', `line name ${JSON.stringify(n)} is not 7-bit ASCII`);
    if (seen.has(n)) throw new ProtocolError('names', `line name ${JSON.stringify(n)} is not unique`);
    seen.add(n);
  }
  return new TextEncoder().encode(names.map((n) => n + '\0').join(''));
}

/**
 * Splits a names block into ngpio names. Like Linux, a short or garbled block (wrong count,
 * missing final NUL, non-ASCII) yields null so the caller falls back to unnamed lines.
 */
export function decodeNames(block: Uint8Array, ngpio: number): string[] | null {
  if (block.length === 0 || block[block.length - 1] !== 0) return null;
  if (block.some((c) => c > 0x7f)) return null;
  const parts = new TextDecoder('ascii').decode(block.subarray(0, block.length - 1)).split('\0');
  return parts.length === ngpio ? parts : null;
}
