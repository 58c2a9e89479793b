// closeNoWait: a peer's descriptor is closed without the event loop ever waiting on another party.
// Kinds whose close() cannot wait go at once; the others (a tty, a device, a FUSE or NFS file, a
// lingering TCP socket) to one background closer thread.
import assert from 'node:assert/strict';
import { openSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import {
  FdPoller,
  closeFd,
  closeNoWait,
  eventfd,
  fdKind,
  memfdCreate,
  socketPair,
} from '../../src/native/index.ts';

async function closedSoon(fd: number): Promise<void> {
  for (let i = 0; i < 500 && fdKind(fd) !== 'closed'; i++) await sleep(10);
  assert.equal(fdKind(fd), 'closed', `fd ${fd} still open`);
}

describe('closeNoWait', () => {
  test('eventfd, memfd, AF_UNIX socket, pipe-like and local files: closed now', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-close-'));
    try {
      writeFileSync(join(dir, 'f'), 'x');
      const [a, b] = socketPair();
      for (const fd of [eventfd(0), memfdCreate('m', 4096), a, b, openSync(join(dir, 'f'), 'r')]) {
        assert.equal(closeNoWait(fd), 'now', fdKind(fd));
        assert.equal(fdKind(fd), 'closed');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a character device (its close may drain or wait on a driver): closed by the background thread', async () => {
    const fds = [openSync('/dev/null', 'r'), openSync('/dev/ptmx', 'r+')];
    for (const fd of fds) assert.equal(closeNoWait(fd), 'background');
    for (const fd of fds) await closedSoon(fd);
  });

  test('a polled fd is refused (EBUSY) and stays open; a closed one is EBADF', () => {
    const fd = eventfd(0);
    const p = new FdPoller(fd, () => {});
    p.start(true, false);
    assert.throws(() => closeNoWait(fd), { code: 'EBUSY' });
    assert.equal(fdKind(fd), 'eventfd');
    p.close();
    closeFd(fd);
    assert.throws(() => closeNoWait(fd), { code: 'EBADF' });
    assert.throws(() => closeNoWait(-1), { code: 'EBADF' });
  });
});
