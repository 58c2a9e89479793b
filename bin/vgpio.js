#!/usr/bin/env node
// The installed CLI: compiled JavaScript only (`npm run build:ts` writes dist/; `npm ci` does it too).
// Tests in the repository run src/cli/main.ts through tsx instead (test/daemon/daemon-harness.ts).
try {
  await import('../dist/cli/main.js');
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('/dist/cli/main.js')) {
    process.stderr.write('vgpio: dist/ is missing: run `npm run build:ts` in the vgpio checkout\n');
    process.exit(1);
  }
  throw e;
}
