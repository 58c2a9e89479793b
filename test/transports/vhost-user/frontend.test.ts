// VhostUserFrontend against a scripted fake back-end: it insists on reply flags exactly 0x5, checks
// reply sizes and acks, and fails cleanly (no hang) when the back-end is silent or goes away.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import { FdPoller, closeFd, socketAccept, socketListen } from '../../../src/native/index.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';
import {
  Flag,
  REPLY_FLAGS,
  Request,
  encodeConfigPayload,
  encodeU64,
} from '../../../src/transports/vhost-user/message.ts';
import { OFFERED_PROTOCOL, RawClient, WIRE_FEATURES, tempDir } from './harness.ts';

/** Listens on a fresh path; resolves with a RawClient for the first connection. */
function fakeBackend(t: TestContext, path: string): Promise<RawClient> {
  const lfd = socketListen(path, 1);
  return new Promise((resolve) => {
    const poller = new FdPoller(lfd, () => {
      const fd = socketAccept(lfd);
      if (fd === null) return;
      poller.close();
      closeFd(lfd);
      const c = new RawClient(fd);
      t.after(() => c.close());
      resolve(c);
    });
    poller.start(true, false);
  });
}

/** Answers the next message (asserting its id) with `payload`, flags 0x5 unless given. */
async function answer(be: RawClient, request: number, payload?: Uint8Array, flags = REPLY_FLAGS) {
  const m = await be.next();
  assert.ok(m);
  assert.equal(m.request, request);
  if (payload) be.send(request, payload, [], flags);
  return m;
}

describe('VhostUserFrontend against a scripted back-end', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  let n = 0;
  after(() => tmp.cleanup());
  const path = () => `${tmp.dir}/fake${n++}.sock`;

  test('a reply with flags other than 0x5 (NEED_REPLY echoed) fails the call', async (t) => {
    const p = path();
    const backend = fakeBackend(t, p);
    const connecting = VhostUserFrontend.connect(p, 41, { timeoutMs: 2000 });
    const be = await backend;
    await answer(be, Request.GET_FEATURES, encodeU64(WIRE_FEATURES), REPLY_FLAGS | Flag.NEED_REPLY);
    await assert.rejects(connecting, {
      name: 'VhostUserError',
      message: 'reply to GET_FEATURES has flags 0xd, expected 0x5',
    });
  });

  test('the back-end closing mid-handshake rejects the pending call', async (t) => {
    const p = path();
    const backend = fakeBackend(t, p);
    const connecting = VhostUserFrontend.connect(p, 41, { timeoutMs: 2000 });
    const be = await backend;
    await answer(be, Request.GET_FEATURES);
    be.close();
    await assert.rejects(connecting, {
      message: 'back-end connection closed (peer closed the connection) while waiting for GET_FEATURES',
    });
  });

  test('a silent back-end: the call times out', async (t) => {
    const p = path();
    const backend = fakeBackend(t, p);
    const connecting = VhostUserFrontend.connect(p, 41, { timeoutMs: 100 });
    await backend;
    await assert.rejects(connecting, { message: 'no reply to GET_FEATURES within 100 ms' });
  });

  test('the handshake in QEMU order; a refused ack and a short GET_CONFIG reply are errors', async (t) => {
    const p = path();
    const backend = fakeBackend(t, p);
    const connecting = VhostUserFrontend.connect(p, 41, { timeoutMs: 2000 });
    const be = await backend;
    await answer(be, Request.GET_FEATURES, encodeU64(WIRE_FEATURES));
    await answer(be, Request.GET_PROTOCOL_FEATURES, encodeU64(OFFERED_PROTOCOL));
    const spf = await answer(be, Request.SET_PROTOCOL_FEATURES);
    assert.deepEqual([spf.flags, [...spf.payload]], [Flag.VERSION, [...encodeU64(0x209n)]]);
    await answer(be, Request.GET_QUEUE_NUM, encodeU64(2n));
    const owner = await answer(be, Request.SET_OWNER, encodeU64(0n));
    assert.equal(owner.flags, Flag.VERSION | Flag.NEED_REPLY, 'REPLY_ACK negotiated: NEED_REPLY asked');
    const fe = await connecting;
    t.after(() => fe.close());
    assert.equal(fe.protocolFeatures, 0x209n);

    const cfg = fe.readConfig(0, 2);
    const get = await answer(be, Request.GET_CONFIG);
    assert.deepEqual(
      [...get.payload],
      [...encodeConfigPayload({ offset: 0, size: 8, flags: 0, data: new Uint8Array(8) })],
    );
    be.send(
      Request.GET_CONFIG,
      encodeConfigPayload({ offset: 0, size: 4, flags: 0, data: new Uint8Array(4) }),
      [],
      REPLY_FLAGS,
    );
    await assert.rejects(cfg, { message: 'GET_CONFIG reply has 16 bytes, expected 20' });

    const refused = fe.configure(Request.SET_VRING_ERR, encodeU64(0x100n));
    await answer(be, Request.SET_VRING_ERR, encodeU64(1n));
    await assert.rejects(refused, { message: 'back-end refused SET_VRING_ERR (ack 1)' });
  });
});
