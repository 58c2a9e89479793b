import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { closeFd, fdSize, isSyscallError, memfdCreate, mmap, munmap } from '../../src/native/index.ts';

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

  it('maps a range beyond the end of the file (not touched: SIGBUS)', () => {
    const fd = memfdCreate(uniqueName('beyond'), PAGE);
    try {
      const buf = mmap(fd, 4 * PAGE, 0);
      assert.equal(buf.byteLength, 4 * PAGE);
      assert.equal(fdSize(fd), PAGE);
      assert.ok(fdSize(fd) < buf.byteLength, 'callers must check fdSize before touching the tail');
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
