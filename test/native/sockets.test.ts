import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import {
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  isSyscallError,
  peerCredentials,
  recvMsg,
  sendMsg,
  setNonBlocking,
  socketAccept,
  socketConnect,
  socketListen,
  socketPair,
} from '../../src/native/index.ts';

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

/** File status flags of one of our descriptors, from /proc/self/fdinfo. */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m, `no flags for fd ${fd}`);
  return parseInt(m[1], 8);
}

function assertCloexecNonblock(fd: number): void {
  const flags = fdFlags(fd);
  assert.ok(flags & O_CLOEXEC, `fd ${fd} lacks O_CLOEXEC (flags ${flags.toString(8)})`);
  assert.ok(flags & O_NONBLOCK, `fd ${fd} lacks O_NONBLOCK (flags ${flags.toString(8)})`);
}

function expectSyscallError(fn: () => unknown, code: string, syscall: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSyscallError(err, code), `expected ${code}, got ${String(err)}`);
    assert.equal(err.syscall, syscall);
    assert.equal(typeof err.errno, 'number');
    assert.ok(err.errno > 0);
    assert.match(err.message, new RegExp(`^${syscall}: ${code} \\(.+\\)$`));
    return true;
  });
}

describe('socketPair + sendMsg/recvMsg', () => {
  it('passes eventfds over SCM_RIGHTS that refer to the same objects', () => {
    const [a, b] = socketPair();
    assertCloexecNonblock(a);
    assertCloexecNonblock(b);
    const e1 = eventfd(0);
    const e2 = eventfd(0);
    try {
      assert.equal(sendMsg(a, Buffer.from('hello'), [e1, e2]), 5);
      const r = recvMsg(b, 64, 4);
      assert.ok(r);
      assert.ok(Buffer.isBuffer(r.data));
      assert.equal(r.data.toString(), 'hello');
      assert.equal(r.truncated, false);
      assert.equal(r.fds.length, 2);
      for (const fd of r.fds) {
        assert.ok(![a, b, e1, e2].includes(fd), 'received fds are new descriptors');
        assert.ok(fdFlags(fd) & O_CLOEXEC, 'received fds are close-on-exec (MSG_CMSG_CLOEXEC)');
      }
      // Writing to the received descriptor is visible on the original: same eventfd object.
      assert.equal(eventfdWrite(r.fds[0], 7n), true);
      assert.equal(eventfdRead(e1), 7n);
      assert.equal(eventfdWrite(r.fds[1], 9n), true);
      assert.equal(eventfdRead(e2), 9n);
      assert.equal(eventfdRead(e1), null);
      r.fds.forEach(closeFd);
    } finally {
      [a, b, e1, e2].forEach(closeFd);
    }
  });

  it('returns null on EAGAIN and an empty buffer on EOF', () => {
    const [a, b] = socketPair();
    try {
      assert.equal(recvMsg(b, 16), null);
      assert.equal(sendMsg(a, Buffer.from('xy')), 2);
      assert.equal(recvMsg(b, 16)?.data.toString(), 'xy');
      closeFd(a);
      const eof = recvMsg(b, 16);
      assert.ok(eof);
      assert.equal(eof.data.length, 0);
      assert.deepEqual(eof.fds, []);
      assert.equal(recvMsg(b, 16)?.data.length, 0, 'EOF stays EOF');
    } finally {
      closeFd(b);
    }
  });

  it('honours maxBytes and preserves stream order', () => {
    const [a, b] = socketPair();
    try {
      assert.equal(sendMsg(a, Buffer.from('abcdef')), 6);
      assert.equal(recvMsg(b, 4)?.data.toString(), 'abcd');
      assert.equal(recvMsg(b, 4)?.data.toString(), 'ef');
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('reports truncation when maxFds is too small, still returning the fds that fit', () => {
    const [a, b] = socketPair();
    const efds = [eventfd(0), eventfd(0), eventfd(0), eventfd(0)];
    try {
      // Exactly enough room: not truncated.
      assert.equal(sendMsg(a, Buffer.from('1'), efds.slice(0, 3)), 1);
      const exact = recvMsg(b, 16, 3);
      assert.ok(exact);
      assert.equal(exact.fds.length, 3);
      assert.equal(exact.truncated, false);
      exact.fds.forEach(closeFd);

      // 4 sent, room for 3 (an odd count, where CMSG_SPACE padding would fit a 4th).
      assert.equal(sendMsg(a, Buffer.from('2'), efds), 1);
      const three = recvMsg(b, 16, 3);
      assert.ok(three);
      assert.equal(three.fds.length, 3);
      assert.equal(three.truncated, true);
      three.fds.forEach(closeFd);

      assert.equal(sendMsg(a, Buffer.from('3'), efds.slice(0, 2)), 1);
      const one = recvMsg(b, 16, 1);
      assert.ok(one);
      assert.equal(one.data.toString(), '3');
      assert.equal(one.fds.length, 1);
      assert.equal(one.truncated, true);
      // The one we got is usable.
      eventfdWrite(one.fds[0], 2n);
      assert.equal(eventfdRead(efds[0]), 2n);
      one.fds.forEach(closeFd);

      assert.equal(sendMsg(a, Buffer.from('4'), efds.slice(0, 1)), 1);
      const none = recvMsg(b, 16, 0);
      assert.ok(none);
      assert.deepEqual(none.fds, []);
      assert.equal(none.truncated, true);
    } finally {
      [a, b, ...efds].forEach(closeFd);
    }
  });

  it('returns null from sendMsg when the socket buffer is full', () => {
    const [a, b] = socketPair();
    try {
      const chunk = Buffer.alloc(65536, 0x55);
      let sent = 0;
      let full = false;
      for (let i = 0; i < 10000 && !full; i++) {
        const n = sendMsg(a, chunk);
        if (n === null) full = true;
        else sent += n;
      }
      assert.ok(full, 'socket buffer never filled');
      assert.ok(sent > 0);
      assert.equal(sendMsg(a, chunk), null);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('validates arguments', () => {
    const [a, b] = socketPair();
    try {
      const fds = Array.from({ length: 33 }, () => a);
      assert.throws(() => sendMsg(a, Buffer.from('x'), fds), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
      });
      assert.throws(() => sendMsg(a, new Uint8Array(0), [b]), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
      });
      assert.throws(() => sendMsg(a, 'x' as unknown as Uint8Array), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
      assert.throws(() => recvMsg(b, 0), { name: 'RangeError' });
      assert.throws(() => recvMsg(b, 16, 254), { name: 'RangeError' });
      assert.throws(() => recvMsg(1.5, 16), { name: 'RangeError' });
      expectSyscallError(() => sendMsg(a, Buffer.from('x'), [-1]), 'EBADF', 'sendmsg');
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('setNonBlocking toggles O_NONBLOCK', () => {
    const [a, b] = socketPair();
    try {
      setNonBlocking(a, false);
      assert.equal(fdFlags(a) & O_NONBLOCK, 0);
      setNonBlocking(a, true);
      assert.ok(fdFlags(a) & O_NONBLOCK);
      expectSyscallError(() => setNonBlocking(-1, true), 'EBADF', 'fcntl');
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });
});

describe('socketListen / socketConnect / socketAccept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-native-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a connection on a filesystem path', () => {
    const path = join(dir, 'listen.sock');
    const l = socketListen(path, 8);
    let c = -1;
    let s: number | null = null;
    try {
      assertCloexecNonblock(l);
      assert.equal(socketAccept(l), null, 'no pending connection -> null');
      c = socketConnect(path);
      assertCloexecNonblock(c);
      s = socketAccept(l);
      assert.equal(typeof s, 'number');
      assert.ok(s !== null);
      assertCloexecNonblock(s);
      assert.equal(sendMsg(c, Buffer.from('ping')), 4);
      assert.equal(recvMsg(s, 16)?.data.toString(), 'ping');
      assert.equal(sendMsg(s, Buffer.from('pong')), 4);
      assert.equal(recvMsg(c, 16)?.data.toString(), 'pong');
      // The path is not unlinked by us: binding it again fails.
      expectSyscallError(() => socketListen(path, 8), 'EADDRINUSE', 'bind');
    } finally {
      closeFd(l);
      if (c >= 0) closeFd(c);
      if (s !== null) closeFd(s);
    }
  });

  it('socketConnect never waits: a listener whose backlog is full answers EAGAIN at once', () => {
    const path = join(dir, 'full.sock');
    const l = socketListen(path, 1);
    const conns: number[] = [];
    try {
      const t = process.hrtime.bigint();
      let refused: unknown = null;
      for (let i = 0; i < 16 && refused === null; i++) {
        try {
          conns.push(socketConnect(path));
        } catch (e) {
          refused = e;
        }
      }
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      assert.ok(isSyscallError(refused, 'EAGAIN'), `expected EAGAIN, got ${String(refused)}`);
      assert.ok(conns.length >= 1 && conns.length <= 3, `${conns.length} connections queued`);
      assert.ok(ms < 1000, `${ms} ms`);
      // Once the listener accepts, there is room again.
      const s = socketAccept(l);
      assert.ok(s !== null);
      closeFd(s);
      conns.push(socketConnect(path));
    } finally {
      conns.forEach(closeFd);
      closeFd(l);
    }
  });

  it('supports the abstract namespace', () => {
    const name = `\0vgpio-native-test-${process.pid}`;
    const l = socketListen(name, 1);
    try {
      const c = socketConnect(name);
      const s = socketAccept(l);
      assert.ok(s !== null);
      closeFd(c);
      closeFd(s);
    } finally {
      closeFd(l);
    }
  });

  it('maps errors to errno codes', () => {
    expectSyscallError(() => socketConnect(join(dir, 'missing.sock')), 'ENOENT', 'connect');
    assert.throws(() => socketConnect(join(dir, 'missing.sock')), {
      message: 'connect: ENOENT (No such file or directory)',
      errno: 2,
    });
    expectSyscallError(() => closeFd(-1), 'EBADF', 'close');
    expectSyscallError(() => socketListen('/' + 'x'.repeat(107), 1), 'ENAMETOOLONG', 'bind');
    expectSyscallError(() => socketConnect('/' + 'x'.repeat(200)), 'ENAMETOOLONG', 'connect');
    expectSyscallError(() => socketListen('', 1), 'EINVAL', 'bind');
    expectSyscallError(() => socketAccept(-1), 'EBADF', 'accept4');
    assert.throws(() => socketListen(42 as unknown as string, 1), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });
});

describe('peerCredentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-peercred-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('names this process for a socketpair', () => {
    const [a, b] = socketPair();
    try {
      const cred = peerCredentials(a);
      assert.deepEqual(cred, { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
      assert.deepEqual(peerCredentials(b), cred);
    } finally {
      closeFd(a);
      closeFd(b);
    }
  });

  it('names the connecting process on an accepted connection', async () => {
    const path = join(dir, 'peer.sock');
    const l = socketListen(path, 4);
    // The child connects with Node's own net module and stays connected until its stdin closes.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const c = require('node:net').connect(process.argv[1], () => process.stdout.write('up\\n'));
         process.stdin.on('end', () => c.destroy()).resume();`,
        path,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let conn: number | null = null;
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      conn = socketAccept(l);
      assert.ok(conn !== null, 'the connection is queued once connect() returned');
      const cred = peerCredentials(conn);
      assert.equal(cred.pid, child.pid);
      assert.notEqual(cred.pid, process.pid);
      assert.equal(cred.uid, process.getuid?.());
      assert.equal(cred.gid, process.getgid?.());
    } finally {
      if (conn !== null) closeFd(conn);
      closeFd(l);
      child.stdin.end();
      await new Promise((resolve) => child.once('close', resolve));
    }
  });

  it('refuses a descriptor that is not a socket', () => {
    const fd = eventfd(0);
    try {
      expectSyscallError(() => peerCredentials(fd), 'ENOTSOCK', 'getsockopt');
      expectSyscallError(() => peerCredentials(-1), 'EBADF', 'getsockopt');
    } finally {
      closeFd(fd);
    }
  });
});
