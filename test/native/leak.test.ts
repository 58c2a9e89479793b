import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  memfdCreate,
  mmap,
  munmap,
} from '../../src/native/index.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const mapCount = (): number => readFileSync('/proc/self/maps', 'utf8').split('\n').length;
const fdCount = (): number => readdirSync('/proc/self/fd').length;
const MiB = 1024 * 1024;

it(
  '10,000 mmap/munmap (and GC-only) and eventfd create/close cycles do not leak',
  { timeout: 120000 },
  async () => {
    const memfd = memfdCreate('vgpio-leak', 4096);
    try {
      const round = (): void => {
        for (let i = 0; i < 10000; i++) {
          const buf = mmap(memfd, 4096, 0);
          const view = new Uint8Array(buf);
          view[i % 4096] = i & 0xff;
          munmap(buf);
        }
        for (let i = 0; i < 10000; i++) {
          const fd = eventfd(0);
          eventfdWrite(fd, 1n);
          eventfdRead(fd);
          closeFd(fd);
        }
      };
      round(); // warm-up
      await settle();
      const rss0 = process.memoryUsage.rss();
      const maps0 = mapCount();
      const fds0 = fdCount();
      for (let r = 0; r < 3; r++) {
        round();
        await settle();
      }
      // Mappings dropped without munmap are unmapped by the ArrayBuffer finalizer.
      for (let i = 0; i < 10000; i++) new Uint8Array(mmap(memfd, 4096, 0))[0] = 1;
      await settle();
      const grown = process.memoryUsage.rss() - rss0;
      // A leaked 4 KiB mapping per iteration alone would add >= 117 MiB here (and 30,000 maps lines).
      assert.ok(grown < 24 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
      assert.ok(mapCount() - maps0 < 50, `mappings grew from ${maps0} to ${mapCount()}`);
      assert.equal(fdCount(), fds0, 'descriptor count changed');
    } finally {
      closeFd(memfd);
    }
  },
);
