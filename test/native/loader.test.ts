import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonPath, loadAddon, packageRoot, resolveAddon } from '../../src/native/index.ts';

describe('addon loading', () => {
  const base = mkdtempSync(join(tmpdir(), 'vgpio-loader-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  const tuple = `${process.platform}-${process.arch}`;

  it('finds the package root from the module location', () => {
    assert.equal(packageRoot, fileURLToPath(new URL('../../', import.meta.url)));
    assert.ok(addonPath.startsWith(packageRoot), addonPath);
    assert.match(addonPath, /\.node$/);
  });

  it('without a build or a prebuilt binary: one error that says what is missing and how to fix it', () => {
    const root = join(base, 'empty');
    mkdirSync(root);
    assert.throws(
      () => loadAddon(root),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.equal((e as Error & { code?: string }).code, 'ERR_VGPIO_ADDON_MISSING');
        assert.ok(e.message.includes(join(root, 'build', 'Release')), e.message);
        assert.ok(e.message.includes(join(root, 'prebuilds')), e.message);
        assert.ok(e.message.includes(tuple), e.message);
        assert.match(e.message, /C compiler, python3 and make/);
        assert.match(e.message, /prebuilds\/linux-x64/);
        assert.equal(e.message.split('\n').length, 1, 'one line');
        return true;
      },
    );
  });

  it('uses prebuilds/<platform>-<arch>/*.node, and a local build/Release before it', () => {
    const root = join(base, 'pkg');
    const prebuilt = join(root, 'prebuilds', tuple, 'vgpio.node');
    mkdirSync(join(root, 'prebuilds', tuple), { recursive: true });
    copyFileSync(addonPath, prebuilt);
    assert.equal(resolveAddon(root), prebuilt);
    const native = loadAddon(root);
    const fd = native.eventfd(0, true, false);
    assert.equal(native.eventfdWrite(fd, 5n), true);
    assert.equal(native.eventfdRead(fd), 5n);
    native.closeFd(fd);

    const local = join(root, 'build', 'Release', 'vgpio_native.node');
    mkdirSync(join(root, 'build', 'Release'), { recursive: true });
    copyFileSync(addonPath, local);
    assert.equal(resolveAddon(root), local);
  });
});
