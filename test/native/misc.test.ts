import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getAffinity, getCpu, isSyscallError, setAffinity } from '../../src/native/index.ts';

describe('CPU placement', () => {
  it('getCpu is within getAffinity', () => {
    const cpus = getAffinity();
    assert.ok(cpus.length > 0);
    assert.deepEqual(
      cpus,
      [...cpus].sort((x, y) => x - y),
    );
    assert.ok(cpus.includes(getCpu()));
  });

  it('setAffinity pins the calling thread', () => {
    const original = getAffinity();
    const target = original[original.length - 1];
    try {
      setAffinity([target]);
      assert.deepEqual(getAffinity(), [target]);
      assert.equal(getCpu(), target);
    } finally {
      setAffinity(original);
    }
    assert.deepEqual(getAffinity(), original);
    assert.throws(
      () => setAffinity([]),
      (err: unknown) => isSyscallError(err, 'EINVAL') && err.syscall === 'sched_setaffinity',
    );
    assert.throws(() => setAffinity([4096]), { name: 'RangeError' });
    assert.throws(() => setAffinity('0' as unknown as number[]), { name: 'TypeError' });
  });
});
