// Smoke tests of the real-guest harness (no vhost-user device yet). Needs test/e2e/guest/build-guest.sh.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestVm, tryLoadGuestEnv, type QemuFlavor } from './guest-vm.ts';

const env = await tryLoadGuestEnv();
const skip = env ? false : 'guest cache missing: run test/e2e/guest/build-guest.sh';

async function checkGuest(vm: GuestVm): Promise<void> {
  const uname = await vm.run('uname -r');
  assert.equal(uname.code, 0);
  assert.equal(uname.out.trim(), env?.kernel.version);

  const modules = await vm.run('cat /proc/modules');
  assert.equal(modules.code, 0);
  assert.match(modules.out, /^gpio_virtio \d+ \d+ .* Live /m);
  assert.match(modules.out, /^virtio_pci /m);

  // No virtio-gpio device: no chips, and libgpiod 1.6's gpiodetect still succeeds.
  const detect = await vm.run('gpiodetect');
  assert.deepEqual(detect, { out: '', code: 0 });
}

// Skipped per test (not per suite) so the runner reports them as skipped.
describe('guest VM harness', () => {
  const vms: GuestVm[] = [];
  after(async () => {
    await Promise.all(vms.map((vm) => vm.kill()));
  });

  async function boot(qemu: QemuFlavor): Promise<GuestVm> {
    const lines: string[] = [];
    try {
      const vm = await GuestVm.boot({ qemu, log: (l) => lines.push(l) });
      vms.push(vm);
      return vm;
    } catch (err) {
      console.error(lines.join('\n'));
      throw err;
    }
  }

  it('reports versions', { skip }, async () => {
    const v = await GuestVm.versions();
    assert.match(v.qemu10, /^10\./);
    assert.match(v.qemu7, /^7\.2\./);
    assert.equal(v.kernel, env?.kernel.version);
  });

  it('boots with QEMU 10 and runs commands', { skip }, async (t) => {
    const vm = await boot('qemu10');
    t.diagnostic(`qemu10 ${env?.qemu10.version}: boot to shell ${Math.round(vm.bootMs)} ms`);
    await checkGuest(vm);

    // The console protocol keeps output exact: no trailing newline added, stderr merged, exit codes kept.
    assert.deepEqual(await vm.run('printf abc'), { out: 'abc', code: 0 });
    assert.deepEqual(await vm.run('echo out; echo err >&2; exit_code() { return 3; }; exit_code'), {
      out: 'out\nerr\n',
      code: 3,
    });
    assert.deepEqual(await vm.run('echo x # trailing comment'), { out: 'x\n', code: 0 });
    assert.deepEqual(await vm.run("printf '%s\\n' '__E_1__ 0' 'a  b'"), {
      out: '__E_1__ 0\na  b\n',
      code: 0,
    });
    assert.deepEqual(await vm.run('cat'), { out: '', code: 0 }, 'stdin is /dev/null');
    const [a, b] = await Promise.all([vm.run('echo one'), vm.run('echo two')]);
    assert.deepEqual([a.out, b.out], ['one\n', 'two\n']);

    // A timed-out command is interrupted and the console stays usable.
    await assert.rejects(vm.run('sleep 30', 1000), /timed out after 1000 ms/);
    assert.deepEqual(await vm.run('echo after'), { out: 'after\n', code: 0 });

    const t0 = performance.now();
    await vm.shutdown();
    t.diagnostic(`qemu10 poweroff ${Math.round(performance.now() - t0)} ms`);
    assert.equal((await vm.exited).code, 0);
  });

  it('boots with QEMU 7.2', { skip }, async (t) => {
    const vm = await boot('qemu7');
    t.diagnostic(`qemu7 ${env?.qemu7.version}: boot to shell ${Math.round(vm.bootMs)} ms`);
    await checkGuest(vm);
    await vm.kill();
    assert.equal((await vm.exited).signal, 'SIGKILL');
  });

  for (const qemu of ['qemu10', 'qemu7'] as const) {
    it(`${qemu}: fails with QEMU's error when no back-end listens on the socket`, { skip }, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'vgpio-guest-'));
      try {
        const socketPath = join(dir, 'nobody.sock');
        await assert.rejects(GuestVm.boot({ qemu, socketPath, bootTimeoutMs: 30_000 }), (err: Error) => {
          assert.match(err.message, /QEMU exited \(code 1\)/);
          assert.match(err.message, /QEMU stderr:\n.*vgpio0.*nobody\.sock/s);
          return true;
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
