import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Chip } from '../../../src/driver/chip.ts';
import { GpioDevice } from '../../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../../src/device/virtio-gpio-device.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { FdPoller, closeFd, socketAccept, socketListen } from '../../../src/native/index.ts';
import { VIRTIO_ID_GPIO } from '../../../src/protocol/constants.ts';
import { VhostUserChannel, type Message } from '../../../src/transports/vhost-user/channel.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import { Request, encodeU64 } from '../../../src/transports/vhost-user/message.ts';
import { VhostUserServer } from '../../../src/transports/vhost-user/server.ts';
import { PROTOCOL_BIT, VERSION_1 } from './harness.ts';
import type { DescriptorChain } from '../../../src/virtqueue/descriptor-chain.ts';

const dir = mkdtempSync(join(tmpdir(), 'vgpio-fe-'));
const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
  rmSync(dir, { recursive: true, force: true });
});

/** A fake back-end that answers each message with `reply` (or nothing, or closes). */
function fakeBackend(name: string, reply: (m: Message, ch: VhostUserChannel) => void): string {
  const path = join(dir, name);
  const fd = socketListen(path, 4);
  const channels: VhostUserChannel[] = [];
  const poller = new FdPoller(fd, () => {
    const c = socketAccept(fd);
    if (c === null) return;
    const ch: VhostUserChannel = new VhostUserChannel(c, { message: (m) => reply(m, ch), closed: () => {} });
    channels.push(ch);
  });
  poller.start(true, false);
  cleanups.push(() => {
    for (const ch of channels) ch.close();
    poller.close();
    closeFd(fd);
  });
  return path;
}

async function rejectsWithin(p: Promise<unknown>, ms: number, pattern: RegExp): Promise<number> {
  const t0 = performance.now();
  await assert.rejects(p, pattern);
  const took = performance.now() - t0;
  assert.ok(took < ms, `took ${took} ms`);
  return took;
}

describe('front-end against misbehaving back-ends: a clear error, never a hang', () => {
  test('reply flags other than 0x5', async () => {
    const path = fakeBackend('flags.sock', (m, ch) => ch.send(m.request, 0xd, encodeU64(0x1_0000_0000n)));
    await rejectsWithin(
      VhostUserFrontend.connect(path, VIRTIO_ID_GPIO, { timeoutMs: 1000 }),
      900,
      /reply to GET_FEATURES has flags 0xd, expected 0x5/,
    );
  });

  test('short reply', async () => {
    const path = fakeBackend('short.sock', (m, ch) => ch.send(m.request, 0x5, new Uint8Array(4)));
    await rejectsWithin(
      VhostUserFrontend.connect(path, VIRTIO_ID_GPIO, { timeoutMs: 1000 }),
      900,
      /GET_FEATURES reply has 4 bytes, expected 8/,
    );
  });

  test('a back-end that never answers: timeout', async () => {
    const path = fakeBackend('hang.sock', () => {});
    const took = await rejectsWithin(
      VhostUserFrontend.connect(path, VIRTIO_ID_GPIO, { timeoutMs: 300 }),
      2000,
      /no reply to GET_FEATURES within 300 ms/,
    );
    assert.ok(took >= 290);
  });

  test('a back-end that closes the socket', async () => {
    const path = fakeBackend('close.sock', (_m, ch) => ch.close());
    await rejectsWithin(
      VhostUserFrontend.connect(path, VIRTIO_ID_GPIO, { timeoutMs: 5000 }),
      2000,
      /connection closed .* while waiting for GET_FEATURES/,
    );
  });

  test('a back-end that hangs later (GET_CONFIG): the driver open fails with a timeout', async () => {
    const path = fakeBackend('late.sock', (m, ch) => {
      if (m.request === Request.GET_FEATURES) ch.send(m.request, 0x5, encodeU64(VERSION_1 | PROTOCOL_BIT));
      if (m.request === Request.GET_PROTOCOL_FEATURES) ch.send(m.request, 0x5, encodeU64(0n));
    });
    const fe = await VhostUserFrontend.connect(path, VIRTIO_ID_GPIO, { timeoutMs: 300 });
    await rejectsWithin(Chip.open(fe), 2000, /no reply to GET_CONFIG within 300 ms/);
    await fe.close();
  });

  test('no back-end at the path', async () => {
    await rejectsWithin(
      VhostUserFrontend.connect(join(dir, 'none.sock'), VIRTIO_ID_GPIO),
      500,
      /cannot connect to .*none\.sock: connect: ENOENT/,
    );
  });
});

describe('front-end against vgpio', () => {
  test('stops cleanly and reconnects; the driver runs unchanged on the new connection', async () => {
    const lines = new SimulatedLines(4);
    const device = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines));
    const path = join(dir, 'vgpio.sock');
    const server = new VhostUserServer(device, { socketPath: path, log: silentLogger });
    cleanups.push(() => server.close());

    const fe1 = await VhostUserFrontend.connect(path, VIRTIO_ID_GPIO);
    cleanups.push(() => void fe1.close());
    assert.equal(fe1.queueCount, 2);
    assert.equal(fe1.protocolFeatures, 0x209n);
    const chip1 = await Chip.open(fe1, { requestTimeoutMs: 5000 });
    const req = await chip1.requestLines({ lines: { 2: { direction: 'output', outputValue: 1 } } });
    assert.equal(lines.output(2), 1);
    for (let i = 0; i < 5; i++) await req.getValue(2);
    const bases = await fe1.stop();
    assert.equal(bases.length, 2);
    assert.equal(bases[0], 2 + 5, 'SET_VALUE, SET_DIRECTION and 5 GET_VALUE (no names: no GET_LINE_NAMES)');
    await chip1.driver.close();

    const fe2 = await VhostUserFrontend.connect(path, VIRTIO_ID_GPIO);
    cleanups.push(() => void fe2.close());
    const chip2 = await Chip.open(fe2, { requestTimeoutMs: 5000 });
    assert.equal((await chip2.lineInfo(2)).direction, 'output', 'line state survives the reconnect');
    const r2 = await chip2.requestLines({ lines: { 1: { direction: 'input', edge: 'rising' } } });
    const events = r2.edgeEvents();
    lines.setInput(1, 1);
    const ev = await events.next();
    assert.equal(ev.value?.type, 'rising');
    assert.equal(ev.value?.offset, 1);
    await chip2.close();
  });
});
