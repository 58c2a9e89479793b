// The device worker's own clean-up: an uncaught error in the worker thread closes its devices (so
// front-ends see their sessions end), tells the main thread why, and ends the thread.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { HeldSockets } from '../../src/daemon/held-sockets.ts';
import type { DeviceWorkerInit, FromDeviceWorker } from '../../src/daemon/worker-messages.ts';
import { RawClient, tempDir } from '../transports/vhost-user/harness.ts';

const WORKER = new URL('../../src/daemon/device-worker.ts', import.meta.url).href;

describe('device-worker', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('an uncaught error: the devices are closed, "died" names the error, the thread exits 1', async () => {
    const held = new HeldSockets({ socket: `${tmp.dir}/crash.sock`, lines: 2 });
    try {
      const init: DeviceWorkerInit = { worker: 0, logLevel: 'info', devices: [held.forWorker()] };
      // The worker file, then a throw on the same thread once it serves (as a bug in it would).
      const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER)}); })
        .then(() => require('node:worker_threads').parentPort.on('message', (m) => {
          if (m.t === 'crash') setTimeout(() => { throw new Error('boom in the worker'); });
        }))`;
      const w = new Worker(entry, {
        eval: true,
        execArgv: process.execArgv.filter((a) => !a.startsWith('--test')),
        workerData: init,
      });
      const messages: FromDeviceWorker[] = [];
      const ready = new Promise<void>((resolve) =>
        w.on('message', (m: FromDeviceWorker) => {
          messages.push(m);
          if (m.t === 'ready') resolve();
        }),
      );
      const exited = new Promise<number>((resolve) => w.once('exit', resolve));
      await ready;
      const raw = RawClient.connect(`${tmp.dir}/crash.sock`);
      await raw.handshake();
      w.postMessage({ t: 'crash' });
      await raw.expectClosed();
      assert.equal(await exited, 1);
      const died = messages.filter((m) => m.t === 'died');
      assert.equal(died.length, 1);
      assert.match(died[0].t === 'died' ? died[0].error : '', /boom in the worker/);
      // Its log records came through the port, the session's end among them.
      assert.ok(
        messages.some((m) => m.t === 'log' && m.msg === 'front-end disconnected; listening again'),
        JSON.stringify(messages.filter((m) => m.t === 'log').map((m) => m.t === 'log' && m.msg)),
      );
    } finally {
      held.close();
    }
  });
});
