// The package's entry points, from source: package.json `exports` maps each subpath to the dist/
// file compiled from the matching src/ entry, and `vgpio` and `vgpio/control` load no native
// addon (each imported in a fresh process where process.dlopen throws), while `vgpio/vhost-user`
// does. test/consumer/run.sh checks the same on the packed tarball.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
  exports: Record<string, string | { types: string; import: string }>;
  files: string[];
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

/** src/ file an export condition's dist/ path is compiled from. */
const sourceOf = (distPath: string): string =>
  distPath.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$|\.js$/, '.ts');

/** Imports `src` in a new process with addon loading forbidden; returns its exit status and stderr. */
function importWithoutAddon(src: string): { status: number | null; stderr: string } {
  const code = `process.dlopen = (_m, f) => { throw new Error('addon loaded: ' + f); };
    await import(${JSON.stringify(`${ROOT}${src}`)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('package entry points', { timeout: 120_000 }, () => {
  test('exports: types + import for ., ./vhost-user, ./control, ./conformance, each from a src entry', () => {
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    assert.deepEqual(subpaths, ['.', './vhost-user', './control', './conformance']);
    for (const k of subpaths) {
      const e = pkg.exports[k];
      assert.ok(typeof e === 'object', k);
      assert.deepEqual(Object.keys(e), ['types', 'import'], `${k}: types first`);
      assert.equal(sourceOf(e.types), sourceOf(e.import), k);
      assert.ok(existsSync(`${ROOT}${sourceOf(e.import)}`), `${k}: ${sourceOf(e.import)}`);
    }
  });

  test('bin runs compiled JS; tsx is a dev dependency only; install falls back to a source build', () => {
    assert.deepEqual(pkg.bin, { vgpio: 'bin/vgpio.js' });
    const bin = readFileSync(`${ROOT}bin/vgpio.js`, 'utf8');
    assert.match(bin, /import\('\.\.\/dist\/cli\/main\.js'\)/);
    assert.doesNotMatch(bin, /import[ (]*'tsx/);
    assert.equal(pkg.dependencies.tsx, undefined);
    assert.ok(pkg.devDependencies.tsx);
    assert.equal(pkg.scripts.install, 'node-gyp-build');
    assert.deepEqual(pkg.files.sort(), [
      'LICENSE',
      'README.md',
      'bin/',
      'binding.gyp',
      'dist/',
      'native/',
      'prebuilds/',
    ]);
  });

  test('`vgpio` and `vgpio/control` load no native addon', () => {
    for (const src of ['src/index.ts', 'src/control.ts']) {
      const r = importWithoutAddon(src);
      assert.equal(r.status, 0, `${src}: ${r.stderr}`);
    }
  });

  test('`vgpio/vhost-user` does load it (so the check above can fail)', () => {
    const r = importWithoutAddon('src/vhost-user.ts');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /addon loaded: /);
  });

  test('the loopback works in-process with the addon forbidden', () => {
    const code = `process.dlopen = () => { throw new Error('addon loaded'); };
      const { openLoopbackChip } = await import(${JSON.stringify(`${ROOT}src/index.ts`)});
      const { chip, lines } = await openLoopbackChip({ lines: 2, names: ['a', 'b'] });
      const req = await chip.requestLines({ consumer: 't', lines: { 1: { direction: 'output', outputValue: 1 } } });
      console.log(lines.output(1));
      await req.release();
      await chip.close();`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(out, '1\n');
  });
});
