import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native/index.ts';

/** The C programs the benches run beside Node (binding.gyp executable targets). */
export type BenchToolName = 'vgpio_eventfd_floor' | 'vgpio_bench_frontend' | 'vgpio_timerfd_floor';

/**
 * Where a C bench program is: the local node-gyp build (a checkout, or an install that compiled the
 * addon), else the prebuilt copy the published package ships beside its addon
 * (prebuilds/PLATFORM-ARCH/, copied there by scripts/prebuild-tools.mjs). When neither exists, the
 * local build's path, so the caller's "not built" message names where it looked first.
 */
export function benchTool(name: BenchToolName): string {
  const built = join(packageRoot, 'build', 'Release', name);
  if (existsSync(built)) return built;
  const prebuilt = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, name);
  return existsSync(prebuilt) ? prebuilt : built;
}
