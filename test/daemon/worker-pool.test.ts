// DeviceWorkerPool in this process: devices served from worker threads, reached through real
// sockets (a vhost-user front-end, the control socket); a worker stopped hard is replaced.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import type { ControlEvent } from '../../src/control/control-protocol.ts';
import { WorkerDeviceLink } from '../../src/daemon/worker-device-link.ts';
import { DeviceWorkerPool } from '../../src/daemon/worker-pool.ts';
import { Direction } from '../../src/protocol/constants.ts';
import {
  RawClient,
  RecordingLogger,
  openChip,
  settle,
  tempDir,
  waitFor,
} from '../transports/vhost-user/harness.ts';

describe('DeviceWorkerPool', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('two workers serve their devices; a stopped worker is replaced and serves again; close removes every socket', async () => {
    const log = new RecordingLogger();
    const sockets = [0, 1, 2].map((i) => `${tmp.dir}/w${i}.sock`);
    const pool = await DeviceWorkerPool.start({
      groups: [
        [{ socket: sockets[0], lines: 4, names: ['a', 'b'] }],
        [
          { socket: sockets[1], lines: 8 },
          { socket: sockets[2], lines: 2 },
        ],
      ],
      log,
      logLevel: 'info',
      deviceLog: (c) => log.child({ socket: c.socket }),
    });
    let closed = false;
    try {
      const ids = pool.threadIds;
      assert.equal(ids.length, 2);
      assert.ok(
        ids.every((id) => typeof id === 'number' && id > 0),
        'worker threads',
      );
      assert.notEqual(ids[0], ids[1]);
      for (const [i, s] of sockets.entries()) {
        // Log records come back to the main thread with the device's socket.
        assert.ok(
          log.find('control endpoint listening').some((e) => e.fields.socket === s),
          s,
        );
        const chip = await openChip(s);
        try {
          assert.equal(chip.driver.ngpio, [4, 8, 2][i]);
          await chip.driver.setDirection(0, Direction.OUT);
          await chip.driver.setValue(0, 1);
          const ctl = await ControlClient.connect(s);
          try {
            assert.equal(await ctl.getOutput(0), 1);
            await chip.driver.setDirection(1, Direction.IN);
            await ctl.setInput(1, 1);
            assert.equal(await chip.driver.getValue(1), 1);
          } finally {
            ctl.close();
          }
        } finally {
          await chip.close();
        }
      }

      // Worker 1 stopped hard (as a crash): worker 0 keeps serving meanwhile, worker 1 is replaced,
      // and the front-end it was serving sees its session end.
      const chip0 = await openChip(sockets[0]);
      const raw = RawClient.connect(sockets[1]);
      await raw.handshake();
      // A surface's link to a device of that worker (as serve --http / --trace use).
      const link = await WorkerDeviceLink.connect(sockets[2], `${sockets[2]}.ctl`);
      const events: ControlEvent[] = [];
      let ended = false;
      const sub = await link.subscribe(
        (e) => events.push(e),
        () => (ended = true),
      );
      await link.setInput(1, 0); // it was high (set above)
      await waitFor(() => events.some((e) => e.event === 'input' && e.line === 1), 'the input event');
      await link.setInput(1, 1);
      const mark = log.mark;
      await pool.terminate(1);
      await raw.expectClosed();
      await chip0.driver.setDirection(1, Direction.IN);
      assert.equal(await chip0.driver.getValue(1), 1, 'worker 0 kept its line state');
      await chip0.close();
      await waitFor(() => log.find('device worker restarted', mark).length === 1, 'the restart', 20_000);
      const died = log.find('device worker died: serving its devices from a new worker', mark);
      assert.equal(died.length, 1);
      assert.equal(died[0].fields.worker, 1);
      assert.equal(died[0].fields.devices, `${sockets[1]},${sockets[2]}`);
      assert.equal(died[0].fields.sessionsClosed, 1);
      assert.deepEqual(pool.restarts, [0, 1]);
      assert.notEqual(pool.threadIds[1], ids[1]);
      // The link connected again by itself: commands reach the new worker, events come back to the
      // same subscriber, which was never told the stream ended. (The new device starts afresh.)
      const before = events.length;
      await waitFor(
        () => {
          link.setInput(0, 1).catch(() => {});
          return events.slice(before).some((e) => e.event === 'input' && e.line === 0 && e.to === 'high');
        },
        'an event through the reconnected link',
        10_000,
      );
      assert.equal((await link.status()).lines[1].level, 'low', 'the restarted device starts afresh');
      assert.equal(ended, false);
      link.close();
      assert.equal(ended, true, 'close ends the subscription');
      sub.stop();
      for (const s of sockets.slice(1)) {
        const chip = await openChip(s);
        try {
          await chip.driver.setDirection(0, Direction.IN);
          const ctl = await ControlClient.connect(s);
          try {
            await ctl.setInput(0, 1);
            assert.equal(await chip.driver.getValue(0), 1);
          } finally {
            ctl.close();
          }
        } finally {
          await chip.close();
        }
      }
      await pool.close();
      closed = true;
      for (const s of sockets) {
        assert.equal(existsSync(s), false, s);
        assert.equal(existsSync(`${s}.ctl`), false, `${s}.ctl`);
      }
    } finally {
      if (!closed) await settle(pool.close());
    }
  });
});
