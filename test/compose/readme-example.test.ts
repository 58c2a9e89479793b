// The README's TypeScript example, read from README.md and run as written: only its import specifier
// is pointed at this tree's entry point (src/index.ts) instead of the installed package, and console.log
// is captured so the output it promises can be checked. test/consumer/run.sh runs the same block
// against the packed tarball, as a user would.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };

/** The one ```ts block under "## Use it from TypeScript". */
function readmeExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it from TypeScript'));
  const m = /^```ts\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(m, 'README.md has no ```ts block under "## Use it from TypeScript"');
  return m[1];
}

test("the README example imports from the package's own name", () => {
  assert.match(readmeExample(), new RegExp(`from '${pkg.name}';`));
});

test('README example, run as written: rising then falling on the button, the led is on', async (t) => {
  const entry = pathToFileURL(join(root, 'src', 'index.ts')).href;
  const source = readmeExample().replace(`from '${pkg.name}';`, `from '${entry}';`);
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'example.mts'); // ESM wherever it lies (top-level await)
  writeFileSync(file, source);

  const logged: unknown[][] = [];
  t.mock.method(console, 'log', (...args: unknown[]) => logged.push(args));
  await import(pathToFileURL(file).href);
  t.mock.restoreAll();

  assert.deepEqual(logged, [
    ['rising', 0, 1],
    ['falling', 0, 2],
    ['led is', 1],
  ]);
});
