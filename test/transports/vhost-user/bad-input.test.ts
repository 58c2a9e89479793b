// Crafted and malformed vhost-user messages never kill the server: each is answered with a failed
// REPLY_ACK (u64 1) or ends the connection; afterwards a new front-end connects and works, and a
// second device served by the same process keeps working throughout.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Chip } from '../../../src/driver/chip.ts';
import type { LineRequest } from '../../../src/driver/line-request.ts';
import { execFileSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { closeFd, eventfd, memfdCreate, sendMsg, socketConnect } from '../../../src/native/index.ts';
import { Direction, IrqType, MessageType, Status } from '../../../src/protocol/constants.ts';
import { encodeRequest } from '../../../src/protocol/messages.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import {
  Flag,
  Request,
  encodeConfigPayload,
  encodeMemoryTable,
  encodeMessage,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  requestName,
  type MemoryRegionDesc,
} from '../../../src/transports/vhost-user/message.ts';
import { DescFlag } from '../../../src/virtqueue/split-ring.ts';
import {
  ACKED_PROTOCOL,
  CHIP_OPTS,
  CapturingTransport,
  GUEST_BASE,
  MiniDriver,
  RawClient,
  Ring,
  USER_BASE,
  frontendChannel,
  openChip,
  rawActivate,
  serveGpio,
  settle,
  tempDir,
  trackedFd,
  waitFor,
  type ServedGpio,
} from './harness.ts';

const MiB = 1 << 20;

/** An fd of ours, closed when the test ends (the back-end gets its own copy). */
function owned(t: TestContext, fd: number): number {
  t.after(() => closeFd(fd));
  return fd;
}
const NEED_REPLY = Flag.VERSION | Flag.NEED_REPLY;

/** A named pipe (FIFO) opened read-write in `dir`, closed when the test ends. */
function fifoFd(t: TestContext, path: string): number {
  execFileSync('mkfifo', [path]);
  return owned(t, openSync(path, constants.O_RDWR | constants.O_NONBLOCK));
}

describe('bad input never kills the server', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  let a: ServedGpio; // the device under attack
  let b: ServedGpio; // a second device in the same process
  let chipB: Chip;
  let reqB: LineRequest;
  let round = 0;

  before(async () => {
    a = serveGpio(`${tmp.dir}/a.sock`, 8);
    b = serveGpio(`${tmp.dir}/b.sock`, 4);
    chipB = await openChip(b.path);
    reqB = await chipB.requestLines({ lines: { 0: { direction: 'output' }, 1: { direction: 'input' } } });
  });
  after(async () => {
    await settle(chipB?.close());
    a?.close();
    b?.close();
    tmp.cleanup();
  });

  /** A connected raw client, closed when the test ends. */
  async function client(t: TestContext, handshake = true): Promise<RawClient> {
    await waitFor(() => !a.server.connected, 'device A to be free');
    const c = RawClient.connect(a.path);
    t.after(() => c.close());
    if (handshake) await c.handshake();
    return c;
  }

  /** Refusals logged since `mark`, as [request, reason]. */
  const refusals = (mark: number) =>
    a.log.find('request refused', mark).map((e) => [e.fields.request, e.fields.reason]);
  /** Reasons of disconnects logged since `mark`. */
  const disconnects = (mark: number) =>
    a.log.find('front-end disconnected; listening again', mark).map((e) => e.fields.reason);

  /**
   * The client goes; a new front-end on A connects and works normally; B kept working. Also checks
   * the connection under test is still usable when `alive` (the refusal did not end it).
   */
  async function healthy(c: RawClient, alive: boolean): Promise<void> {
    if (alive) {
      assert.equal(c.closedReason, null, 'the refusal ended the connection');
      assert.equal(await c.u64(Request.GET_QUEUE_NUM), 2n, 'the connection still answers');
    }
    c.close();
    await waitFor(() => !a.server.connected, 'A to see the disconnect');

    const v = (round++ % 2) as 0 | 1;
    const chip = await openChip(a.path);
    try {
      const req = await chip.requestLines({
        lines: { 6: { direction: 'input' }, 7: { direction: 'output', outputValue: v } },
      });
      a.lines.setInput(6, v);
      assert.equal(await req.getValue(6), v);
      assert.equal(a.lines.output(7), v);
      await req.release();
    } finally {
      await chip.close();
    }
    await waitFor(() => !a.server.connected, 'A to see the new front-end leave');

    b.lines.setInput(1, v);
    assert.equal(await reqB.getValue(1), v);
    await reqB.setValue(0, v);
    assert.equal(b.lines.output(0), v);
    assert.equal(b.server.connected, true);
  }

  const region = (
    gpa: number,
    size: number,
    ua = USER_BASE + BigInt(gpa),
    offset = 0n,
  ): MemoryRegionDesc => ({
    guestPhysAddr: BigInt(gpa),
    memorySize: BigInt(size),
    userspaceAddr: ua,
    mmapOffset: offset,
  });

  describe('headers and framing', () => {
    for (const flags of [0x0, 0x2, 0x3]) {
      test(`version bits ${flags} → disconnect`, async (t) => {
        const c = await client(t, false);
        const mark = a.log.mark;
        c.send(Request.GET_FEATURES, undefined, [], flags);
        await c.expectClosed();
        const bad = a.log.find('bad message flags or version: disconnecting', mark);
        assert.deepEqual(
          bad.map((e) => e.fields),
          [{ request: 'GET_FEATURES', flags }],
        );
        assert.deepEqual(disconnects(mark), [`bad flags 0x${flags.toString(16)}`]);
        await healthy(c, false);
      });
    }

    test('REPLY bit set in a request → disconnect (also with NEED_REPLY, also after the handshake)', async (t) => {
      const c1 = await client(t, false);
      c1.send(Request.GET_FEATURES, undefined, [], Flag.VERSION | Flag.REPLY);
      await c1.expectClosed();
      await healthy(c1, false);
      const c2 = await client(t);
      const mark = a.log.mark;
      c2.send(Request.SET_OWNER, undefined, [], Flag.VERSION | Flag.REPLY | Flag.NEED_REPLY);
      await c2.expectClosed();
      assert.deepEqual(disconnects(mark), ['bad flags 0xd']);
      await healthy(c2, false);
    });

    test('unknown flag bits → disconnect', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      c.send(Request.GET_QUEUE_NUM, undefined, [], Flag.VERSION | 0x100);
      await c.expectClosed();
      assert.deepEqual(disconnects(mark), ['bad flags 0x101']);
      await healthy(c, false);
    });

    test('payload size > 4096 → disconnect', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const header = encodeMessage(Request.SET_CONFIG, NEED_REPLY);
      new DataView(header.buffer).setUint32(8, 4097, true);
      c.sendBytes(header);
      await c.expectClosed();
      assert.deepEqual(disconnects(mark), ['message 25 announces 4097 payload bytes (max 4096)']);
      await healthy(c, false);
    });

    test('payload of exactly 4096 bytes is framed; unknown request 99 with NEED_REPLY → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const before = { ...a.server.counters };
      assert.equal(await c.ack(99, new Uint8Array(4096)), 1n);
      assert.equal(await c.ack(99), 1n);
      c.send(99); // no NEED_REPLY: refused silently
      await c.expectSilence();
      assert.deepEqual(refusals(mark), [
        ['UNKNOWN(99)', 'unsupported request UNKNOWN(99)'],
        ['UNKNOWN(99)', 'unsupported request UNKNOWN(99)'],
        ['UNKNOWN(99)', 'unsupported request UNKNOWN(99)'],
      ]);
      // Exact counts, whatever the log's rate limit writes.
      assert.deepEqual(a.server.counters, {
        ...before,
        messages: before.messages + 3,
        refused: before.refused + 3,
      });
      await healthy(c, true);
    });

    test('a message trickling in byte by byte is reassembled', async (t) => {
      const c = await client(t);
      const bytes = encodeMessage(
        Request.GET_CONFIG,
        Flag.VERSION,
        encodeConfigPayload({ offset: 0, size: 2, flags: 0, data: new Uint8Array(2) }),
      );
      for (const byte of bytes) {
        c.sendBytes(Uint8Array.of(byte));
        await sleep(1);
      }
      const m = await c.next();
      assert.ok(m);
      assert.deepEqual(
        [m.request, m.flags, m.size, ...m.payload.subarray(12)],
        [Request.GET_CONFIG, 0x5, 14, 8, 0],
      );
      await healthy(c, true);
    });

    test('a front-end that closes with our reply unread (a reset connection) is a normal disconnect', async (t) => {
      await waitFor(() => !a.server.connected, 'device A to be free');
      const mark = a.log.mark;
      const fd = socketConnect(a.path); // no poller: nothing ever reads the reply
      assert.equal(sendMsg(fd, encodeMessage(Request.GET_QUEUE_NUM, Flag.VERSION)), 12);
      await waitFor(() => a.log.find('message', mark).length === 1 || a.server.connected, 'the connection');
      await sleep(50); // the reply now sits unread in our receive queue
      closeFd(fd);
      await waitFor(() => disconnects(mark).length === 1, 'the disconnect');
      assert.deepEqual(disconnects(mark), ['peer reset the connection']);
      await healthy(await client(t), true);
    });

    test('a front-end that dies half-way through a message (header and an fd sent): fd closed, server listens', async (t) => {
      const c = await client(t);
      const f = trackedFd();
      t.after(f.dispose);
      const mark = a.log.mark;
      const msg = encodeMessage(
        Request.SET_MEM_TABLE,
        NEED_REPLY,
        encodeMemoryTable([region(GUEST_BASE, MiB)]),
      );
      c.sendBytes(msg.subarray(0, 20), [f.fd]);
      await sleep(20);
      c.close();
      await waitFor(() => disconnects(mark).length === 1, 'the disconnect');
      assert.deepEqual(disconnects(mark), ['peer closed the connection']);
      await waitFor(f.closedEverywhere, 'the fd of the unfinished message to be closed');
      await healthy(c, false);
    });

    test('more than 8 fds with one message → disconnect; every fd closed', async (t) => {
      const c = await client(t);
      const fds = Array.from({ length: 9 }, () => trackedFd());
      t.after(() => fds.forEach((f) => f.dispose()));
      const mark = a.log.mark;
      c.send(
        Request.SET_OWNER,
        undefined,
        fds.map((f) => f.fd),
        NEED_REPLY,
      );
      await c.expectClosed();
      assert.deepEqual(disconnects(mark), ['control data truncated (too many fds)']);
      await waitFor(() => fds.every((f) => f.closedEverywhere()), 'all 9 fds to be closed');
      await healthy(c, false);
    });
  });

  describe('wrong number of fds', () => {
    test('SET_MEM_TABLE with fewer fds than regions → ack 1, the fd closed', async (t) => {
      const c = await client(t);
      await c.ack(Request.SET_FEATURES, encodeU64(0x1_4000_0001n));
      const f = trackedFd();
      t.after(f.dispose);
      const mark = a.log.mark;
      const table = encodeMemoryTable([region(GUEST_BASE, MiB), region(GUEST_BASE + MiB, MiB)]);
      assert.equal(await c.ack(Request.SET_MEM_TABLE, table, [f.fd]), 1n);
      assert.deepEqual(refusals(mark), [['SET_MEM_TABLE', '2 regions but 1 fds']]);
      await waitFor(f.closedEverywhere, 'the region fd to be closed');
      await healthy(c, true);
    });

    test('SET_VRING_KICK with 0 fds and no NOFD bit → ack 1; NOFD with an fd → ack 1, fd closed', async (t) => {
      const c = await client(t);
      const f = trackedFd();
      t.after(f.dispose);
      const mark = a.log.mark;
      assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(0n)), 1n);
      assert.equal(await c.ack(Request.SET_VRING_CALL, encodeU64(0x101n), [f.fd]), 1n);
      assert.deepEqual(refusals(mark), [
        ['SET_VRING_KICK', '0 fds attached, expected 1'],
        ['SET_VRING_CALL', '1 fds attached, expected 0'],
      ]);
      await waitFor(f.closedEverywhere, 'the fd to be closed');
      await healthy(c, true);
    });

    test('fds attached to GET_FEATURES → closed and refused (the connection ends: no reply can say no)', async (t) => {
      const c = await client(t);
      const f = trackedFd();
      t.after(f.dispose);
      const mark = a.log.mark;
      const dropped = a.server.counters.dropped;
      c.send(Request.GET_FEATURES, undefined, [f.fd]);
      await c.expectClosed();
      assert.deepEqual(refusals(mark), [['GET_FEATURES', '1 fds attached, expected 0']]);
      assert.deepEqual(disconnects(mark), ['cannot answer GET_FEATURES: 1 fds attached, expected 0']);
      assert.equal(a.server.counters.dropped, dropped + 1);
      await waitFor(f.closedEverywhere, 'the fd to be closed');
      await healthy(c, false);
    });

    test('fds attached to SET_OWNER → ack 1, both closed', async (t) => {
      const c = await client(t);
      const fs = [trackedFd(), trackedFd()];
      t.after(() => fs.forEach((f) => f.dispose()));
      assert.equal(
        await c.ack(
          Request.SET_OWNER,
          undefined,
          fs.map((f) => f.fd),
        ),
        1n,
      );
      await waitFor(() => fs.every((f) => f.closedEverywhere()), 'both fds to be closed');
      await healthy(c, true);
    });

    test('kick, call and err fds that are not eventfds (FIFO, socket, memfd, file) → ack 1, each fd closed', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const file = owned(t, openSync(`${tmp.dir}/plain-file`, 'w+'));
      // Node makes no anonymous pipe; a FIFO is one by another name (its link is the path).
      const sent: Array<[request: number, kind: string, fd: number]> = [
        [Request.SET_VRING_CALL, 'path', fifoFd(t, `${tmp.dir}/call-fifo`)],
        [Request.SET_VRING_KICK, 'path', fifoFd(t, `${tmp.dir}/kick-fifo`)],
        [Request.SET_VRING_ERR, 'memfd', owned(t, memfdCreate('not-an-eventfd', 4096))],
        [Request.SET_VRING_KICK, 'memfd', owned(t, memfdCreate('not-an-eventfd', 4096))],
        [Request.SET_VRING_CALL, 'path', file],
      ];
      for (const [request, , fd] of sent) assert.equal(await c.ack(request, encodeU64(0n), [fd]), 1n);
      const sockets = [trackedFd(), trackedFd()];
      t.after(() => sockets.forEach((f) => f.dispose()));
      assert.equal(await c.ack(Request.SET_VRING_CALL, encodeU64(1n), [sockets[0].fd]), 1n);
      assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(1n), [sockets[1].fd]), 1n);
      const which: Record<number, string> = { 12: 'kick', 13: 'call', 14: 'err' };
      assert.deepEqual(refusals(mark), [
        ...sent.map(([r, kind]) => [requestName(r), `${which[r]} fd is a ${kind}, not an eventfd`]),
        ['SET_VRING_CALL', 'call fd is a socket, not an eventfd'],
        ['SET_VRING_KICK', 'kick fd is a socket, not an eventfd'],
      ]);
      await waitFor(() => sockets.every((f) => f.closedEverywhere()), 'the socket fds to be closed');
      await healthy(c, true);
    });

    test('an eventfd as kick, call and err fd → ack 0', async (t) => {
      const c = await client(t);
      for (const request of [Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR])
        assert.equal(await c.ack(request, encodeU64(1n), [owned(t, eventfd(0))]), 0n);
      await healthy(c, true);
    });
  });

  describe('truncated and malformed payloads', () => {
    test('SET_VRING_NUM with 4 bytes → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      assert.equal(await c.ack(Request.SET_VRING_NUM, new Uint8Array(4)), 1n);
      assert.deepEqual(refusals(mark), [['SET_VRING_NUM', 'payload is 4 bytes, expected 8']]);
      await healthy(c, true);
    });

    test('SET_MEM_TABLE declaring 2 regions with 1 region of bytes → ack 1, fds closed', async (t) => {
      const c = await client(t);
      const fs = [trackedFd(), trackedFd()];
      t.after(() => fs.forEach((f) => f.dispose()));
      const table = encodeMemoryTable([region(GUEST_BASE, MiB)]);
      new DataView(table.buffer).setUint32(0, 2, true);
      const mark = a.log.mark;
      assert.equal(
        await c.ack(
          Request.SET_MEM_TABLE,
          table,
          fs.map((f) => f.fd),
        ),
        1n,
      );
      assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([])), 1n);
      assert.deepEqual(refusals(mark), [
        ['SET_MEM_TABLE', 'malformed memory table'],
        ['SET_MEM_TABLE', '0 regions (1..8)'],
      ]);
      await waitFor(() => fs.every((f) => f.closedEverywhere()), 'both fds to be closed');
      await healthy(c, true);
    });

    test('GET_CONFIG with a size that does not match its payload → disconnect', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const p = encodeConfigPayload({ offset: 0, size: 8, flags: 0, data: new Uint8Array(8) });
      c.send(Request.GET_CONFIG, p.subarray(0, 16));
      await c.expectClosed();
      assert.deepEqual(disconnects(mark), ['cannot answer GET_CONFIG: malformed config payload']);
      await healthy(c, false);
    });

    test('SET_FEATURES with bits that were not offered → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      assert.equal(await c.ack(Request.SET_FEATURES, encodeU64(0x1_0000_0001n)), 0n);
      assert.equal(await c.ack(Request.SET_FEATURES, encodeU64(0x1_4000_0003n)), 1n);
      assert.deepEqual(refusals(mark), [['SET_FEATURES', 'features 0x2 were not offered']]);
      assert.equal(a.virtio.negotiated, 0x1_0000_0001n, 'the refused set changed nothing');
      await healthy(c, true);
    });
  });

  describe('ring index out of range', () => {
    test('SET_VRING_NUM index 2 → ack 1; SET_VRING_KICK index 2 → ack 1, fd closed', async (t) => {
      const c = await client(t);
      const kick = trackedFd();
      t.after(kick.dispose);
      const mark = a.log.mark;
      assert.equal(await c.ack(Request.SET_VRING_NUM, encodeVringState({ index: 2, num: 16 })), 1n);
      assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(2n), [kick.fd]), 1n);
      assert.equal(await c.ack(Request.SET_VRING_CALL, encodeU64(0x200n), [owned(t, eventfd(0))]), 1n);
      assert.deepEqual(refusals(mark), [
        ['SET_VRING_NUM', 'ring index 2 out of range (device has 2)'],
        ['SET_VRING_KICK', 'ring index 2 out of range (device has 2)'],
        ['SET_VRING_CALL', 'reserved bits set in 0x200'],
      ]);
      await waitFor(kick.closedEverywhere, 'the kick fd to be closed');
      await healthy(c, true);
    });

    test('GET_VRING_BASE index 7 → disconnect', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      c.send(Request.GET_VRING_BASE, encodeVringState({ index: 7, num: 0 }));
      await c.expectClosed();
      assert.deepEqual(disconnects(mark), [
        'cannot answer GET_VRING_BASE: ring index 7 out of range (device has 2)',
      ]);
      await healthy(c, false);
    });
  });

  describe('memory tables', () => {
    test('overlapping regions → ack 1 (guest-physical, then user addresses)', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const m1 = owned(t, memfdCreate('r1', MiB));
      const m2 = owned(t, memfdCreate('r2', MiB));
      const gpaOverlap = [
        region(GUEST_BASE, MiB),
        region(GUEST_BASE + MiB / 2, MiB, USER_BASE + 0x1000_0000n),
      ];
      assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable(gpaOverlap), [m1, m2]), 1n);
      const uaOverlap = [
        region(GUEST_BASE, MiB, USER_BASE),
        region(GUEST_BASE + 4 * MiB, MiB, USER_BASE + 0x1000n),
      ];
      const m3 = owned(t, memfdCreate('r3', MiB));
      const m4 = owned(t, memfdCreate('r4', MiB));
      assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable(uaOverlap), [m3, m4]), 1n);
      assert.deepEqual(refusals(mark), [
        ['SET_MEM_TABLE', 'memory regions overlap (guestPhysAddr)'],
        ['SET_MEM_TABLE', 'memory regions overlap (userspaceAddr)'],
      ]);
      await healthy(c, true);
    });

    test('regions that do not fit their fd, or are empty → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const mem = () => owned(t, memfdCreate('guest', MiB));
      assert.equal(
        await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([region(GUEST_BASE, 2 * MiB)]), [mem()]),
        1n,
      );
      const shifted = region(GUEST_BASE, MiB, USER_BASE, BigInt(MiB / 2));
      assert.equal(await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([shifted]), [mem()]), 1n);
      assert.equal(
        await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([region(GUEST_BASE, 0)]), [mem()]),
        1n,
      );
      assert.equal(
        await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([region(GUEST_BASE, 4096)]), [
          owned(t, eventfd(0)),
        ]),
        1n,
      );
      assert.deepEqual(refusals(mark), [
        ['SET_MEM_TABLE', 'region 0 needs 2097152 bytes of its fd, which has 1048576'],
        ['SET_MEM_TABLE', 'region 0 needs 1572864 bytes of its fd, which has 1048576'],
        ['SET_MEM_TABLE', 'region 0 is empty'],
        ['SET_MEM_TABLE', 'region 0 needs 4096 bytes of its fd, which has 0'],
      ]);
      await healthy(c, true);
    });

    test('a region on a filesystem whose page faults another party answers (here sysfs) → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      // A sysfs attribute reports 4096 bytes, so only the filesystem check can refuse it.
      const sysfs = owned(t, openSync('/sys/devices/system/cpu/online', 'r'));
      assert.equal(
        await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([region(GUEST_BASE, 4096)]), [sysfs]),
        1n,
      );
      const [[request, message]] = refusals(mark);
      assert.equal(request, 'SET_MEM_TABLE');
      assert.match(
        String(message),
        /^region 0: its fd is on sysfs \(type 0x62656572\).*guest memory must be on tmpfs, hugetlbfs/,
      );
      // A memfd (tmpfs) of the same size is taken.
      assert.equal(
        await c.ack(Request.SET_MEM_TABLE, encodeMemoryTable([region(GUEST_BASE, 4096)]), [
          owned(t, memfdCreate('guest', 4096)),
        ]),
        0n,
      );
      await healthy(c, true);
    });
  });

  describe('protocol state', () => {
    test('SET_VRING_ENABLE before protocol features were acked (bit 30) → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const enable = encodeVringState({ index: 0, num: 1 });
      assert.equal(await c.ack(Request.SET_VRING_ENABLE, enable), 1n);
      assert.equal(await c.ack(Request.SET_FEATURES, encodeU64(0x1_0000_0001n)), 0n); // without bit 30
      assert.equal(await c.ack(Request.SET_VRING_ENABLE, enable), 1n);
      assert.equal(await c.ack(Request.SET_FEATURES, encodeU64(0x1_4000_0001n)), 0n);
      assert.equal(await c.ack(Request.SET_VRING_ENABLE, encodeVringState({ index: 0, num: 2 })), 1n);
      assert.equal(await c.ack(Request.SET_VRING_ENABLE, enable), 0n);
      assert.deepEqual(refusals(mark), [
        ['SET_VRING_ENABLE', 'protocol features were not negotiated'],
        ['SET_VRING_ENABLE', 'protocol features were not negotiated'],
        ['SET_VRING_ENABLE', 'enable value 2'],
      ]);
      await healthy(c, true);
    });

    test('SET_CONFIG is refused (read-only config space)', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      const p = encodeConfigPayload({ offset: 0, size: 2, flags: 0, data: Uint8Array.of(1, 0) });
      assert.equal(await c.ack(Request.SET_CONFIG, p), 1n);
      assert.deepEqual(refusals(mark), [['SET_CONFIG', 'the config space is read-only']]);
      const cfg = await c.call(
        Request.GET_CONFIG,
        encodeConfigPayload({ offset: 0, size: 2, flags: 0, data: new Uint8Array(2) }),
      );
      assert.deepEqual([...cfg.payload.subarray(12)], [8, 0], 'ngpio unchanged');
      await healthy(c, true);
    });

    test('queue sizes that are not a power of two (or too big, or 0) and bases beyond 16 bits → ack 1', async (t) => {
      const c = await client(t);
      const mark = a.log.mark;
      for (const num of [3, 0, 512, 100])
        assert.equal(await c.ack(Request.SET_VRING_NUM, encodeVringState({ index: 1, num })), 1n);
      assert.equal(await c.ack(Request.SET_VRING_NUM, encodeVringState({ index: 1, num: 256 })), 0n);
      assert.equal(await c.ack(Request.SET_VRING_BASE, encodeVringState({ index: 1, num: 0x10000 })), 1n);
      assert.deepEqual(refusals(mark), [
        ['SET_VRING_NUM', 'queue size 3 (max 256, power of two)'],
        ['SET_VRING_NUM', 'queue size 0 (max 256, power of two)'],
        ['SET_VRING_NUM', 'queue size 512 (max 256, power of two)'],
        ['SET_VRING_NUM', 'queue size 100 (max 256, power of two)'],
        ['SET_VRING_BASE', 'base 65536 does not fit a split ring'],
      ]);
      await healthy(c, true);
    });

    test('ring settings while the ring runs → ack 1', async (t) => {
      const c = await client(t);
      const s = await rawActivate(c);
      t.after(s.dispose);
      const mark = a.log.mark;
      assert.equal(await c.ack(Request.SET_VRING_NUM, encodeVringState({ index: 0, num: 8 })), 1n);
      assert.equal(await c.ack(Request.SET_VRING_BASE, encodeVringState({ index: 0, num: 3 })), 1n);
      const addr = { index: 0, flags: 0, desc: USER_BASE, used: USER_BASE, avail: USER_BASE, log: 0n };
      assert.equal(await c.ack(Request.SET_VRING_ADDR, encodeVringAddr(addr)), 1n);
      assert.deepEqual(refusals(mark), [
        ['SET_VRING_NUM', 'ring is running'],
        ['SET_VRING_BASE', 'ring is running'],
        ['SET_VRING_ADDR', 'ring is running'],
      ]);
      const d = new MiniDriver(s);
      assert.deepEqual(await d.request(MessageType.GET_DIRECTION, 0), {
        status: Status.OK,
        value: 0,
        len: 2,
      });
      await healthy(c, true);
    });

    test('without REPLY_ACK negotiated a refusal is silent and the connection stays', async (t) => {
      const c = await client(t, false);
      await c.handshake(ACKED_PROTOCOL & ~8n);
      const mark = a.log.mark;
      c.send(
        Request.SET_CONFIG,
        encodeConfigPayload({ offset: 0, size: 1, flags: 0, data: new Uint8Array(1) }),
        [],
        NEED_REPLY,
      );
      await c.expectSilence();
      assert.deepEqual(refusals(mark), [['SET_CONFIG', 'the config space is read-only']]);
      await healthy(c, true);
    });
  });

  describe('rings that break', () => {
    test('ring addresses outside the memory table: the ring does not start until they are fixed', async (t) => {
      const c = await client(t);
      const s = await rawActivate(c);
      t.after(s.dispose);
      const d = new MiniDriver(s);
      const l = s.layouts[0];
      const addr = {
        index: 0,
        flags: 0,
        desc: s.user(l.descAddr),
        used: s.user(l.usedAddr),
        avail: s.user(l.availAddr),
        log: 0n,
      };
      const stop = await c.call(Request.GET_VRING_BASE, encodeVringState({ index: 0, num: 0 }));
      assert.deepEqual([...stop.payload], [...encodeVringState({ index: 0, num: 0 })]);
      const mark = a.log.mark;
      const outside = USER_BASE + BigInt(MiB);
      assert.equal(await c.ack(Request.SET_VRING_ADDR, encodeVringAddr({ ...addr, desc: outside })), 0n);
      assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(0n), [s.kick[0]]), 0n);
      assert.deepEqual(
        a.log.find('ring cannot start', mark).map((e) => e.fields),
        [{ ring: 0, error: 'descriptor table at user address 0x7f0000100000 is outside the memory table' }],
      );
      d.place(MessageType.GET_DIRECTION, 0);
      d.kick(0);
      await sleep(50);
      assert.equal(d.rqRing.usedIdx, 0, 'a ring that did not start serves nothing');
      assert.equal(await c.ack(Request.SET_VRING_ADDR, encodeVringAddr(addr)), 0n);
      assert.equal(await c.ack(Request.SET_VRING_KICK, encodeU64(0n), [s.kick[0]]), 0n);
      assert.deepEqual(await d.collectRequests(0, 1), [{ status: Status.OK, value: Direction.NONE, len: 2 }]);
      await healthy(c, true);
    });

    test('a descriptor pointing outside guest memory: the device logs and stops that queue', async (t) => {
      const c = await client(t);
      const s = await rawActivate(c);
      t.after(s.dispose);
      const rq = new Ring(s.memory, s.layouts[0]);
      const d = new MiniDriver(s);
      assert.deepEqual(await d.request(MessageType.SET_DIRECTION, 2, Direction.IN), {
        status: Status.OK,
        value: 0,
        len: 2,
      });
      const mark = a.log.mark;
      // A chain written by hand: request at 0x1000 (no memory there), response in memory.
      const resp = s.allocator.alloc(16);
      rq.writeDesc(10, 0x1000, 8, DescFlag.NEXT, 11);
      rq.writeDesc(11, resp, 2, DescFlag.WRITE);
      rq.setAvailEntry(1, 10);
      rq.availIdx = 2;
      d.kick(0);
      await waitFor(
        () => a.log.find('queue is malformed; the device needs a reset', mark).length === 1,
        'the log line',
      );
      assert.deepEqual(a.log.find('queue is malformed; the device needs a reset', mark)[0].fields, {
        queue: 0,
        error: `buffer [0x1000, +8) outside guest memory`,
      });
      assert.equal(rq.usedIdx, 1, 'nothing used after the bad chain');
      // The queue stays stopped: a good request after it is not served.
      const good = s.allocator.alloc(8);
      s.memory.write(good, encodeRequest({ type: MessageType.GET_DIRECTION, gpio: 2, value: 0 }));
      rq.writeDesc(12, good, 8, DescFlag.NEXT, 13);
      rq.writeDesc(13, resp, 2, DescFlag.WRITE);
      rq.setAvailEntry(2, 12);
      rq.availIdx = 3;
      d.kick(0);
      await sleep(50);
      assert.equal(rq.usedIdx, 1);
      // The connection still answers, and reports where the ring stopped.
      const base = await c.call(Request.GET_VRING_BASE, encodeVringState({ index: 0, num: 0 }));
      assert.deepEqual([...base.payload], [...encodeVringState({ index: 0, num: 1 })]);
      await healthy(c, true);
    });

    test('a bad eventq descriptor written into VhostUserFrontend memory stops only the eventq', async (t) => {
      await waitFor(() => !a.server.connected, 'device A to be free');
      const transport = new CapturingTransport(
        await VhostUserFrontend.connect(a.path, 41, { timeoutMs: 3000 }),
      );
      const chip = await Chip.open(transport, { ...CHIP_OPTS, queueSize: 64 });
      try {
        const rings = transport.rings;
        assert.ok(rings);
        const eq = new Ring(rings.memory, rings.layouts[1]);
        const mark = a.log.mark;
        // The descriptor's buffer ends 1 byte past the end of guest memory.
        const end = rings.memory.regions[0].guestPhysAddr + rings.memory.regions[0].bytes.length;
        eq.writeDesc(63, end - 1, 2, 0);
        eq.setAvailEntry(eq.availIdx % 64, 63);
        eq.availIdx = eq.availIdx + 1;
        transport.kick(1);
        await waitFor(
          () => a.log.find('queue is malformed; the device needs a reset', mark).length > 0,
          'log',
        );
        assert.deepEqual(
          a.log.find('queue is malformed; the device needs a reset', mark).map((e) => e.fields),
          [{ queue: 1, error: `buffer [0x${(end - 1).toString(16)}, +2) outside guest memory` }],
        );
        assert.equal(eq.usedIdx, 0);
        // The requestq is unaffected.
        await chip.driver.setDirection(4, Direction.OUT);
        assert.equal(await chip.driver.getDirection(4), Direction.OUT);
        assert.equal(a.lines.direction(4), Direction.OUT);
      } finally {
        await chip.close();
      }
      await waitFor(() => !a.server.connected, 'A to be free');
      await healthy(await client(t), true);
    });

    test('the front-end vanishing mid-session: the server listens again; line state survives, IRQ types reset', async () => {
      await waitFor(() => !a.server.connected, 'device A to be free');
      const transport = new CapturingTransport(
        await VhostUserFrontend.connect(a.path, 41, { timeoutMs: 3000 }),
      );
      const chip = await Chip.open(transport, CHIP_OPTS);
      await chip.requestLines({
        lines: {
          0: { direction: 'output', outputValue: 1 },
          1: { direction: 'input' },
          2: { direction: 'input', edge: 'rising' },
        },
      });
      a.lines.setInput(1, 1);
      await waitFor(() => a.gpio.snapshot()[2].armed, 'line 2 armed');
      assert.equal(a.gpio.snapshot()[2].irqType, IrqType.EDGE_RISING);
      const mark = a.log.mark;
      frontendChannel(transport.fe).close('vanished'); // no GET_VRING_BASE, no goodbye
      await waitFor(() => !a.server.connected, 'the server to notice');
      assert.deepEqual(disconnects(mark), ['peer closed the connection']);
      await transport.fe.close(); // frees the front-end's memory and eventfds

      const snap = a.gpio.snapshot();
      assert.deepEqual(
        snap.slice(0, 3).map((l) => [l.direction, l.value, l.irqType, l.armed, l.latched]),
        [
          [Direction.OUT, 1, IrqType.NONE, false, false],
          [Direction.IN, 1, IrqType.NONE, false, false],
          [Direction.IN, 0, IrqType.NONE, false, false],
        ],
      );
      // An edge now is not latched for anyone.
      a.lines.setInput(2, 1);
      assert.equal(a.gpio.snapshot()[2].latched, false);

      const chip2 = await openChip(a.path);
      try {
        const d = chip2.driver;
        assert.equal(await d.getDirection(0), Direction.OUT);
        assert.equal(await d.getValue(0), 1);
        assert.equal(await d.getDirection(1), Direction.IN);
        assert.equal(await d.getValue(1), 1);
        assert.equal(await d.getDirection(2), Direction.IN);
        // Type NONE on the device: a different edge type is accepted without disabling first.
        await d.call(MessageType.SET_IRQ_TYPE, 2, IrqType.EDGE_FALLING);
        assert.equal(a.gpio.snapshot()[2].irqType, IrqType.EDGE_FALLING);
        await d.call(MessageType.SET_IRQ_TYPE, 2, IrqType.NONE);
      } finally {
        await chip2.close();
      }
      await waitFor(() => !a.server.connected, 'A to be free');
      assert.equal(a.lines.output(0), 1);
    });
  });
});
