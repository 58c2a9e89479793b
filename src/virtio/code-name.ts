/**
 * The name of `code` in a table of named codes (`{ GET_VALUE: 4, ... }`), or `unknown(code)` when
 * no entry has that value. Imports nothing: protocol codes and vhost-user requests both use it.
 */
export function codeName(
  table: Readonly<Record<string, number>>,
  code: number,
  unknown: (code: number) => string = (c) => `0x${c.toString(16)}`,
): string {
  for (const [name, value] of Object.entries(table)) if (value === code) return name;
  return unknown(code);
}
