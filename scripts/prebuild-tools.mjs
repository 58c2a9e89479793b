#!/usr/bin/env node
// After prebuildify: the C bench programs (binding.gyp executable targets) beside the prebuilt addon
// in prebuilds/PLATFORM-ARCH/, so `vgpio bench` in an installed package (no compiler, no build/)
// still has its C front-end and floors (src/bench/bench-tool.ts looks there).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const tools = ['vgpio_eventfd_floor', 'vgpio_bench_frontend', 'vgpio_timerfd_floor'];
const out = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(out, { recursive: true });
for (const t of tools) {
  const built = join(root, 'build', 'Release', t);
  if (!existsSync(built)) {
    console.error(`prebuild-tools: ${built} was not built (binding.gyp target ${t})`);
    process.exit(1);
  }
  copyFileSync(built, join(out, t));
}
console.log(`prebuild-tools: ${tools.join(', ')} -> ${out}`);
