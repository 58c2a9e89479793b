// plainDeviceFlags takes the common valid `serve` flags without the config schema; for every
// input it either agrees with parseDeviceFlags (the schema) or declines (null) so the schema
// decides. It must never take what the schema refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainDeviceFlags } from '../../src/cli/serve-flags.ts';
import { parseDeviceFlags } from '../../src/daemon/serve-config.ts';

type Flags = { lines: string; names?: string; socketMode?: string };

const cases: Flags[] = [
  { lines: '8' },
  { lines: '1' },
  { lines: '65535' },
  { lines: '0' },
  { lines: '65536' },
  { lines: '08' },
  { lines: '-1' },
  { lines: '1.5' },
  { lines: '' },
  { lines: ' 8' },
  { lines: '4', names: 'a,b,c,d' },
  { lines: '4', names: 'a,,c' },
  { lines: '4', names: '' },
  { lines: '2', names: 'a,b,c' },
  { lines: '3', names: 'a,b,a' },
  { lines: '3', names: ',,' },
  { lines: '4', names: ',,,,' },
  { lines: '2', names: 'é' },
  { lines: '2', names: 'a\u0000' },
  { lines: '2', names: 'led 0,button' },
  { lines: '8', socketMode: '0600' },
  { lines: '8', socketMode: '660' },
  { lines: '8', socketMode: '0800' },
  { lines: '8', socketMode: '00600' },
  { lines: '8', socketMode: 'rw' },
  { lines: '8', names: 'x', socketMode: '0644' },
];

const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

for (const flags of cases) {
  test(`plainDeviceFlags(${JSON.stringify(flags)}) agrees with the schema or declines`, () => {
    const plain = plainDeviceFlags(flags);
    let schema: object | null = null;
    try {
      schema = parseDeviceFlags(flags);
    } catch {
      schema = null;
    }
    if (schema === null) assert.equal(plain, null, 'took flags the schema refuses');
    else {
      assert.notEqual(plain, null, 'declined valid flags (all these plain ones must be taken)');
      assert.deepEqual(defined(plain as object), defined(schema));
    }
  });
}
