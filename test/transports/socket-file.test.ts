// Socket files are only removed when stale: a live listener (in this process, so SO_PEERCRED
// names this pid) is refused, a file that is not a socket is refused, ECONNREFUSED is removed.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { closeFd, socketListen } from '../../src/native/index.ts';
import { SocketInUseError, bindSocketFile, removeStaleSocket } from '../../src/transports/socket-file.ts';
import { tempDir } from './vhost-user/harness.ts';

describe('socket files', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('a missing path is fine', () => {
    removeStaleSocket(`${tmp.dir}/none.sock`);
  });

  test('a live listener is refused with its pid, and keeps its file', () => {
    const path = `${tmp.dir}/live.sock`;
    const fd = socketListen(path, 4);
    try {
      assert.throws(
        () => removeStaleSocket(path),
        (e: unknown) =>
          e instanceof SocketInUseError &&
          e.message === `${path} is in use by pid ${process.pid}` &&
          e.pid === process.pid,
      );
      assert.throws(() => bindSocketFile(path, 0o600, () => socketListen(path, 4)), SocketInUseError);
      assert.equal(lstatSync(path).isSocket(), true);
    } finally {
      closeFd(fd);
    }
  });

  test('a live node:net server (the control socket kind) is refused too', async () => {
    const path = `${tmp.dir}/net.sock`;
    const server = createServer();
    await new Promise<void>((r) => server.listen(path, r));
    try {
      assert.throws(() => removeStaleSocket(path), { message: `${path} is in use by pid ${process.pid}` });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('a stale socket (nobody listens: ECONNREFUSED) is removed, and bindSocketFile listens there', () => {
    const path = `${tmp.dir}/stale.sock`;
    closeFd(socketListen(path, 4)); // the file stays behind, as after a crash
    assert.equal(lstatSync(path).isSocket(), true);
    const fd = bindSocketFile(path, 0o640, () => socketListen(path, 4));
    assert.equal(lstatSync(path).mode & 0o777, 0o640);
    closeFd(fd);
    removeStaleSocket(path);
    assert.equal(existsSync(path), false);
  });

  test('a file that is not a socket is an error and left alone', () => {
    const path = `${tmp.dir}/plain`;
    writeFileSync(path, 'data');
    assert.throws(() => removeStaleSocket(path), {
      name: 'SocketInUseError',
      message: `${path} exists and is not a socket: not removing it`,
    });
    assert.equal(readFileSync(path, 'utf8'), 'data');
  });

  test('a bind error names the path; EACCES says what to change', () => {
    assert.throws(
      () =>
        bindSocketFile(`${tmp.dir}/no/such/dir.sock`, 0o600, () =>
          socketListen(`${tmp.dir}/no/such/dir.sock`, 4),
        ),
      {
        message: new RegExp(`^cannot listen at ${tmp.dir}/no/such/dir\\.sock: `),
      },
    );
    const eacces = Object.assign(new Error('bind: EACCES (Permission denied)'), {
      code: 'EACCES',
      errno: 13,
      syscall: 'bind',
    });
    assert.throws(
      () =>
        bindSocketFile(`${tmp.dir}/x.sock`, 0o600, () => {
          throw eacces;
        }),
      {
        message: `cannot listen at ${tmp.dir}/x.sock: EACCES (no permission to create a file in its directory): choose a directory you can write, or run as a user (or group) that may`,
      },
    );
  });
});
