// A second `vgpio serve` never takes over a live daemon's sockets (device or control): it exits
// non-zero naming the live daemon's pid, and the first daemon keeps serving. Sockets left by a
// killed daemon are stale and are taken.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { openChip, tempDir } from '../transports/vhost-user/harness.ts';
import { CLI, ROOT, controlStatus, runCli, startDaemon, type Daemon } from './daemon-harness.ts';

/** Runs the CLI as user nobody (needs root to switch): exit status and stderr. */
function asNobody(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...CLI, ...args],
    { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: '/tmp' } },
  );
  return { status: r.status, stderr: r.stderr };
}

const ngpio = async (path: string): Promise<number> => (await controlStatus(path)).ngpio;

describe('vgpio serve on a path in use (child processes)', { timeout: 90_000 }, () => {
  const tmp = tempDir();
  const daemons: Daemon[] = [];
  after(async () => {
    await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
    tmp.cleanup();
  });

  test('a live device socket: refused with the pid, exit 1; the first daemon still serves', async () => {
    const path = `${tmp.dir}/live.sock`;
    const first = await startDaemon(['--socket', path, '--lines', '3']);
    daemons.push(first);
    const r = await runCli(['serve', '--socket', path, '--lines', '5']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`ERROR cannot start error="${path} is in use by pid ${first.child.pid}"`),
    );
    assert.equal(first.exit, null);
    assert.equal(await ngpio(path), 3);
    const chip = await openChip(path);
    assert.equal(chip.driver.ngpio, 3);
    await chip.close();
  });

  test('a live control socket: refused, and the second device socket is not left behind', async () => {
    const path = `${tmp.dir}/ctl-owner.sock`;
    const first = await startDaemon(['--socket', path, '--lines', '2']);
    daemons.push(first);
    const other = `${tmp.dir}/other.sock`;
    const r = await runCli(['serve', '--socket', other, '--control', `${path}.ctl`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`"${path}\\.ctl is in use by pid ${first.child.pid}"`));
    assert.equal(existsSync(other), false);
    assert.equal(await ngpio(path), 2);
  });

  test('sockets left by a killed daemon are stale: the next daemon removes and serves them', async () => {
    const path = `${tmp.dir}/stale.sock`;
    const dead = await startDaemon(['--socket', path, '--lines', '1']);
    await dead.stop('SIGKILL');
    assert.equal(lstatSync(path).isSocket(), true, 'SIGKILL leaves the socket file');
    assert.equal(lstatSync(`${path}.ctl`).isSocket(), true);
    const next = await startDaemon(['--socket', path, '--lines', '4']);
    daemons.push(next);
    assert.equal(await ngpio(path), 4);
  });

  test(
    'EACCES: a directory it may not write names the path and the fix; so does a socket it may not use',
    {
      skip: process.getuid?.() === 0 ? false : 'needs root to run the CLI as another user',
    },
    async () => {
      const shared = `${tmp.dir}/shared`;
      mkdirSync(shared, { mode: 0o755 });
      chmodSync(tmp.dir, 0o755); // mkdtemp's 0700 would hide everything from nobody
      const bind = asNobody(['serve', '--socket', `${shared}/x.sock`]);
      assert.equal(bind.status, 1);
      assert.match(
        bind.stderr,
        new RegExp(`cannot listen at ${shared}/x\\.sock: EACCES .*: choose a directory you can write`),
      );
      const path = `${shared}/root.sock`;
      const d = await startDaemon(['--socket', path, '--lines', '1']);
      daemons.push(d);
      const connect = asNobody(['status', path]);
      assert.equal(connect.status, 1);
      assert.match(
        connect.stderr,
        /permission denied on .*root\.sock\.ctl \(the daemon's --socket-mode and group decide who may connect\)/,
      );
    },
  );
});
