// ServedDevice in process: a vhost-user socket and its control endpoint, status as front-ends come
// and go, a connected fd served directly, and what close() leaves behind.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import type { DeviceStatus } from '../../src/control/control-protocol.ts';
import { ServedDevice } from '../../src/daemon/served-device.ts';
import { closeQuietly, socketListen, socketPair } from '../../src/native/index.ts';
import { Direction } from '../../src/protocol/constants.ts';
import { Request, encodeU64 } from '../../src/transports/vhost-user/message.ts';
import {
  RawClient,
  RecordingLogger,
  openChip,
  settle,
  tempDir,
  waitFor,
} from '../transports/vhost-user/harness.ts';

async function status(path: string): Promise<DeviceStatus> {
  const c = await ControlClient.connect(path);
  try {
    const r = await c.request({ op: 'status' });
    assert.ok(r.ok && r.status);
    return r.status;
  } finally {
    c.close();
  }
}

const head = (s: DeviceStatus) => [s.socket, s.connected, s.features, s.irqNegotiated, s.ngpio];

describe('ServedDevice', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  const devices: ServedDevice[] = [];
  after(async () => {
    for (const d of devices) await settle(d.close());
    tmp.cleanup();
  });

  test('status follows the front-end: not connected, negotiated, gone again (features reported only while connected)', async () => {
    const path = `${tmp.dir}/status.sock`;
    const log = new RecordingLogger();
    const d = await ServedDevice.start({ socket: path, lines: 3, names: ['a', 'b', 'c'] }, log);
    devices.push(d);
    assert.deepEqual(
      log.find('control endpoint listening').map((e) => e.fields),
      [{ control: `${path}.ctl` }],
    );
    assert.deepEqual(head(await status(path)), [path, false, null, false, 3]);

    const chip = await openChip(path);
    await chip.driver.setDirection(2, Direction.IN);
    const s = await status(path);
    assert.deepEqual(head(s), [path, true, '0x130000001', true, 3]);
    assert.equal(s.pid, process.pid);
    assert.deepEqual(
      s.lines.map((l) => [l.name, l.direction]),
      [
        ['a', 'none'],
        ['b', 'none'],
        ['c', 'input'],
      ],
    );
    await chip.close();
    await waitFor(() => log.find('front-end disconnected; listening again').length === 1, 'the disconnect');
    const gone = await status(path);
    assert.deepEqual(head(gone), [path, false, null, false, 3]);
    assert.equal(gone.lines[2].direction, 'input', 'line state stays');

    // A driver that does not take interrupts.
    const noIrq = await openChip(path, { irq: false });
    assert.deepEqual(head(await status(path)), [path, true, '0x130000000', false, 3]);
    await noIrq.close();
  });

  test('close() removes the vhost-user socket and PATH.ctl', async () => {
    const path = `${tmp.dir}/close.sock`;
    const d = await ServedDevice.start({ socket: path, lines: 1 }, new RecordingLogger());
    assert.deepEqual([existsSync(path), existsSync(`${path}.ctl`)], [true, true]);
    await d.close();
    assert.deepEqual([existsSync(path), existsSync(`${path}.ctl`)], [false, false]);
  });

  test('a connected fd is served directly; onExit runs when the front-end goes', async () => {
    const [mine, theirs] = socketPair();
    const log = new RecordingLogger();
    let exitReason: string | null = null;
    const d = await ServedDevice.start({ fd: theirs, lines: 2 }, log, (r) => (exitReason = r));
    devices.push(d);
    assert.equal(
      log.find('no control endpoint: give a control socket path to drive lines from the CLI').length,
      1,
    );
    const raw = new RawClient(mine);
    assert.equal(await raw.u64(Request.GET_QUEUE_NUM), 2n);
    raw.close();
    await waitFor(() => exitReason !== null, 'onExit');
    assert.equal(exitReason, 'peer closed the connection');
  });

  test('a listening fd is served like a socket path, also to a front-end already waiting', async () => {
    const path = `${tmp.dir}/lfd.sock`;
    const lfd = socketListen(path, 4);
    const early = RawClient.connect(path);
    early.send(Request.GET_QUEUE_NUM);
    const d = await ServedDevice.start(
      { fd: lfd, lines: 2, control: `${tmp.dir}/lfd.ctl` },
      new RecordingLogger(),
    );
    devices.push(d);
    const m = await early.next();
    assert.ok(m, 'the waiting front-end was dropped');
    assert.equal(m.request, Request.GET_QUEUE_NUM);
    early.close();
    await d.close(); // the server owns (and closes) the listening fd
  });

  test('status counts what front-ends did exactly: connections, messages, refusals (the log may be limited)', async () => {
    const path = `${tmp.dir}/counts.sock`;
    const d = await ServedDevice.start({ socket: path, lines: 2 }, new RecordingLogger());
    devices.push(d);
    assert.deepEqual((await status(path)).frontend, {
      connections: 0,
      messages: 0,
      refused: 0,
      dropped: 0,
      malformedQueues: 0,
    });
    const c = RawClient.connect(path);
    await c.handshake();
    const sent = (await status(path)).frontend?.messages ?? 0;
    assert.ok(sent > 0, 'the handshake was counted');
    const [x, y] = socketPair();
    try {
      for (let i = 0; i < 20; i++) assert.equal(await c.ack(Request.SET_VRING_CALL, encodeU64(0n), [x]), 1n);
    } finally {
      closeQuietly(x);
      closeQuietly(y);
    }
    const f = (await status(path)).frontend;
    assert.equal(f?.connections, 1);
    assert.equal(f?.refused, 20, 'every refusal counted');
    assert.equal(f?.messages, sent + 20);
    c.close();
  });

  test('neither a socket nor an fd: refused', async () => {
    await assert.rejects(ServedDevice.start({ lines: 1 }, new RecordingLogger()), {
      message: 'a device needs a socket path or an fd',
    });
  });
});
