import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  addonPath,
  closeFd,
  fdSeals,
  fdSize,
  isSyscallError,
  mappingFaulted,
  mappingFaults,
  memfdCreate,
  mmap,
  munmap,
  type FdSeal,
} from '../../src/native/index.ts';

const nativeModule = fileURLToPath(new URL('../../src/native/index.ts', import.meta.url));

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Full GC, then let deferred (SetImmediate) finalizers run. */
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Number of mappings of the memfd called `name` in this process. */
function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`/memfd:${name} `)).length;
}

let seq = 0;
function uniqueName(tag: string): string {
  return `vgpio-${tag}-${process.pid}-${seq++}`;
}

describe('memfd + mmap', () => {
  it('shares memory between two mappings of the same memfd', () => {
    const name = uniqueName('share');
    const fd = memfdCreate(name, 2 * PAGE);
    try {
      assert.equal(fdSize(fd), 2 * PAGE);
      const a = mmap(fd, 2 * PAGE, 0);
      const b = mmap(fd, PAGE, PAGE); // second page only
      const ro = mmap(fd, PAGE, PAGE, false);
      assert.ok(a instanceof ArrayBuffer);
      assert.equal(a.byteLength, 2 * PAGE);
      assert.equal(b.byteLength, PAGE);
      assert.equal(mappingsOf(name), 3);

      const va = new Uint8Array(a);
      const vb = new Uint8Array(b);
      assert.equal(vb[0], 0, 'fresh memfd is zero-filled');
      va.set([1, 2, 3], PAGE);
      assert.deepEqual([...vb.subarray(0, 3)], [1, 2, 3]);
      new DataView(b).setUint32(8, 0xdeadbeef, true);
      assert.equal(new DataView(a).getUint32(PAGE + 8, true), 0xdeadbeef);
      assert.deepEqual([...new Uint8Array(ro, 0, 3)], [1, 2, 3]);

      munmap(a);
      munmap(b);
      munmap(ro);
      assert.equal(mappingsOf(name), 0);
    } finally {
      closeFd(fd);
    }
  });

  it('munmap detaches the buffer and every view; a second munmap throws EALREADY', () => {
    const fd = memfdCreate(uniqueName('detach'), PAGE);
    try {
      const buf = mmap(fd, PAGE, 0);
      const view = new Uint8Array(buf);
      const tail = new Uint16Array(buf, 16, 4);
      view[0] = 42;
      munmap(buf);
      assert.equal(buf.byteLength, 0);
      assert.equal(view.byteLength, 0);
      assert.equal(view.length, 0);
      assert.equal(view[0], undefined, 'no access to the unmapped memory');
      assert.equal(tail.byteLength, 0);
      assert.throws(
        () => munmap(buf),
        (err: unknown) => isSyscallError(err, 'EALREADY') && err.syscall === 'munmap',
      );
      // The data went to the file: a new mapping sees it.
      const again = mmap(fd, PAGE, 0);
      assert.equal(new Uint8Array(again)[0], 42);
      munmap(again);
    } finally {
      closeFd(fd);
    }
  });

  it('rejects buffers it did not create', () => {
    assert.throws(() => munmap(new ArrayBuffer(PAGE)), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => munmap(new Uint8Array(4) as unknown as ArrayBuffer), { name: 'TypeError' });
  });

  it('validates length and offset', () => {
    const fd = memfdCreate(uniqueName('einval'), PAGE);
    try {
      for (const [len, off] of [
        [0, 0],
        [PAGE, 1],
        [PAGE, PAGE / 2],
      ]) {
        assert.throws(
          () => mmap(fd, len, off),
          (err: unknown) => isSyscallError(err, 'EINVAL') && err.syscall === 'mmap',
        );
      }
      assert.throws(() => mmap(fd, -1, 0), { name: 'RangeError' });
      assert.throws(() => mmap(fd, 2 ** 33, 0), { name: 'RangeError' });
      assert.throws(
        () => mmap(-1, PAGE, 0),
        (err: unknown) => isSyscallError(err, 'EBADF'),
      );
    } finally {
      closeFd(fd);
    }
  });

  it('maps a range beyond the end of the file (the SIGBUS guard tests touch it)', () => {
    const fd = memfdCreate(uniqueName('beyond'), PAGE);
    try {
      const buf = mmap(fd, 4 * PAGE, 0);
      assert.equal(buf.byteLength, 4 * PAGE);
      assert.equal(fdSize(fd), PAGE);
      new Uint8Array(buf, 0, PAGE)[0] = 1; // the part inside the file is fine
      munmap(buf);
    } finally {
      closeFd(fd);
    }
  });

  it('the finalizer unmaps a buffer that was only garbage-collected', async () => {
    const name = uniqueName('gc');
    const fd = memfdCreate(name, PAGE);
    try {
      (() => {
        const buf = mmap(fd, PAGE, 0);
        new Uint8Array(buf)[0] = 7;
      })();
      assert.equal(mappingsOf(name), 1);
      await collect();
      assert.equal(mappingsOf(name), 0, 'mapping freed by the finalizer');
    } finally {
      closeFd(fd);
    }
  });

  it('munmap followed by GC unmaps exactly once (a new mapping at the same address survives)', async () => {
    const nameA = uniqueName('once-a');
    const nameB = uniqueName('once-b');
    const fdA = memfdCreate(nameA, PAGE);
    const fdB = memfdCreate(nameB, PAGE);
    try {
      let b: ArrayBuffer | undefined;
      (() => {
        const a = mmap(fdA, PAGE, 0);
        munmap(a);
        // Very likely reuses a's address; a's finalizer must not unmap it.
        b = mmap(fdB, PAGE, 0);
      })();
      await collect();
      assert.equal(mappingsOf(nameA), 0);
      assert.equal(mappingsOf(nameB), 1);
      assert.ok(b);
      new Uint8Array(b)[0] = 9;
      assert.equal(new Uint8Array(b)[0], 9);
      munmap(b);
      assert.equal(mappingsOf(nameB), 0);
    } finally {
      closeFd(fdA);
      closeFd(fdB);
    }
  });

  it('memfdCreate validates its arguments', () => {
    assert.throws(
      () => memfdCreate('x'.repeat(300), PAGE),
      (err: unknown) => isSyscallError(err, 'EINVAL') && err.syscall === 'memfd_create',
    );
    assert.throws(() => memfdCreate('x', -1), { name: 'RangeError' });
    assert.throws(
      () => fdSize(-1),
      (err: unknown) => isSyscallError(err, 'EBADF') && err.syscall === 'fstat',
    );
    const fd = memfdCreate('', 0);
    assert.equal(fdSize(fd), 0);
    closeFd(fd);
  });
});

describe('seals', () => {
  it('memfdCreate seals on request and fdSeals reports them', () => {
    const plain = memfdCreate(uniqueName('plain'), PAGE);
    const sealed = memfdCreate(uniqueName('sealed'), 2 * PAGE, ['shrink', 'grow']);
    const sealable = memfdCreate(uniqueName('sealable'), PAGE, []);
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-seals-'));
    const file = openSync(join(dir, 'regular'), 'w+');
    try {
      assert.deepEqual(fdSeals(plain), ['seal'], 'no MFD_ALLOW_SEALING: sealed against sealing');
      assert.deepEqual(fdSeals(sealed), ['shrink', 'grow']);
      assert.equal(fdSize(sealed), 2 * PAGE, 'sealed after the ftruncate');
      assert.throws(() => ftruncateSync(sealed, 0), { code: 'EPERM' });
      assert.throws(() => ftruncateSync(sealed, 4 * PAGE), { code: 'EPERM' });
      assert.deepEqual(fdSeals(sealable), []);
      assert.equal(fdSeals(file), null, 'a regular file carries no seals');
      assert.throws(() => memfdCreate('x', PAGE, ['tight' as FdSeal]), { name: 'RangeError' });
      assert.throws(() => memfdCreate('x', PAGE, 'shrink' as unknown as FdSeal[]), { name: 'TypeError' });
      assert.throws(
        () => fdSeals(-1),
        (err: unknown) => isSyscallError(err, 'EBADF') && err.syscall === 'fcntl',
      );
    } finally {
      [plain, sealed, sealable].forEach(closeFd);
      closeSync(file);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SIGBUS guard', () => {
  const faults = (): number => Atomics.load(mappingFaults, 0);

  it('a memfd truncated under a mapping: the process lives, the mapping is flagged, reads give zeros', () => {
    const fd = memfdCreate(uniqueName('shrink'), 4 * PAGE);
    const buf = mmap(fd, 4 * PAGE, 0);
    const other = mmap(fd, PAGE, 0);
    try {
      const bytes = new Uint8Array(buf);
      for (let p = 0; p < 4; p++) bytes[p * PAGE + 5] = 0xa0 + p;
      const before = faults();
      assert.equal(mappingFaulted(buf), false);

      ftruncateSync(fd, PAGE); // keep the first page only
      assert.equal(bytes[2 * PAGE + 5], 0, 'a read past the new end gives 0, it does not kill');
      assert.equal(mappingFaulted(buf), true);
      assert.equal(mappingFaulted(other), false, 'a mapping that did not fault is not flagged');
      assert.equal(faults(), before + 1);
      // Everything from the faulting page on now reads as zeros, without further faults.
      assert.equal(bytes[3 * PAGE + 5], 0);
      let sum = 0;
      for (let i = 2 * PAGE; i < 4 * PAGE; i++) sum += bytes[i];
      assert.equal(sum, 0);
      assert.equal(faults(), before + 1);
      // The page before it is still beyond the end: a second fault, also survived.
      assert.equal(bytes[PAGE + 5], 0);
      assert.equal(faults(), before + 2);
      // Writes there go to private zero pages; the first page is still the file's.
      new DataView(buf).setUint32(3 * PAGE, 0xfeedf00d, true);
      assert.equal(bytes[5], 0xa0);
      new Uint8Array(other)[6] = 0x77;
      assert.equal(bytes[6], 0x77, 'the page inside the file is still shared');
      assert.equal(fdSize(fd), PAGE, 'the file did not grow back');

      munmap(buf);
      assert.throws(() => mappingFaulted(buf), { code: 'EALREADY' });
      assert.throws(() => mappingFaulted(new ArrayBuffer(8)), { name: 'TypeError' });
    } finally {
      munmap(other);
      closeFd(fd);
    }
  });

  it('truncated to 0: reads and writes from optimized code through typed arrays survive', () => {
    const fd = memfdCreate(uniqueName('zero'), 16 * PAGE);
    const buf = mmap(fd, 16 * PAGE, 0);
    try {
      const words = new Uint32Array(buf);
      words.fill(0x01010101);
      const sum = (): number => {
        let s = 0;
        for (let i = 0; i < words.length; i++) s += words[i];
        return s;
      };
      for (let r = 0; r < 20; r++) assert.equal(sum(), words.length * 0x01010101); // warm up the JIT
      ftruncateSync(fd, 0);
      assert.equal(sum(), 0);
      words.fill(7);
      assert.equal(words[words.length - 1], 7);
      assert.equal(mappingFaulted(buf), true);
    } finally {
      munmap(buf);
      closeFd(fd);
    }
  });

  const runChild = (body: string): { signal: string | null; status: number | null; stdout: string } => {
    const script = `import { memfdCreate, mmap } from ${JSON.stringify(nativeModule)};
      import { ftruncateSync } from 'node:fs';
      ${body}`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30000,
    });
    return { signal: r.signal, status: r.status, stdout: r.stdout };
  };

  it('a SIGBUS outside our mappings still kills the process, even after one was survived', () => {
    const r = runChild(`
      const fd = memfdCreate('child', 4096);
      const bytes = new Uint8Array(mmap(fd, 4096, 0)); // installs the guard
      ftruncateSync(fd, 0);
      process.stdout.write('read ' + bytes[100] + '\\n');
      process.kill(process.pid, 'SIGBUS');
      setTimeout(() => process.stdout.write('still alive\\n'), 2000);`);
    assert.equal(r.stdout, 'read 0\n');
    assert.equal(r.signal, 'SIGBUS');
  });

  it('a real fault outside our mappings (code of a truncated shared object) still kills the process', () => {
    // The child loads a second copy of the addon, truncates that file and calls into it: the
    // kernel raises SIGBUS for the copy's code pages, which are no mapping of ours.
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-sigbus-'));
    try {
      const copy = join(dir, 'copy.node');
      const script = `const { copyFileSync, truncateSync } = require('node:fs');
        const n = require(${JSON.stringify(addonPath)});
        const fd = n.memfdCreate('child', 4096);
        new Uint8Array(n.mmap(fd, 4096, 0))[0] = 1; // installs the guard
        copyFileSync(${JSON.stringify(addonPath)}, ${JSON.stringify(copy)});
        const other = { exports: {} };
        process.dlopen(other, ${JSON.stringify(copy)});
        truncateSync(${JSON.stringify(copy)}, 0);
        process.stdout.write('calling\\n');
        other.exports.getCpu();
        process.stdout.write('still alive\\n');`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
      assert.equal(r.stdout, 'calling\n', r.stderr);
      assert.equal(r.signal, 'SIGBUS');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a child that never mmaps is not affected (the default action stays)', () => {
    const r = runChild(`memfdCreate('child', 4096); process.kill(process.pid, 'SIGBUS');
      setTimeout(() => process.stdout.write('still alive\\n'), 2000);`);
    assert.equal(r.signal, 'SIGBUS');
    assert.equal(r.stdout, '');
  });
});
