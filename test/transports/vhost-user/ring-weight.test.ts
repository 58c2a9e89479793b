import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GpioDevice } from '../../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../../src/device/virtio-gpio-device.ts';
import { MessageType, Status } from '../../../src/protocol/constants.ts';
import { VhostUserServer } from '../../../src/transports/vhost-user/server.ts';
import type { DescriptorChain } from '../../../src/virtqueue/descriptor-chain.ts';
import { MiniDriver, RawClient, RecordingLogger, rawActivate, tempDir, waitFor } from './harness.ts';

// The back-end serves a ring with kicks suppressed and looks again before it sleeps (busy polling
// too), so a driver that adds a chain whenever one is served would be served for ever from one
// callback, and nothing else of the process (timers, the control socket, other connections) would
// run. Here the "driver" adds the next request from inside the device's work (the line backend's
// sense()), with no kick after the first: the ring never empties. The back-end must come back to
// its event loop every so many chains (its ring weight) and then, unkicked, go on serving.

const REQUESTS = 3000;

describe('ring weight', { timeout: 180_000 }, () => {
  for (const pollUs of [0, 50])
    test(`pollUs ${pollUs}: a ring that never empties leaves the event loop running and is served to the end`, async (t) => {
      const tmp = tempDir();
      const lines = new SimulatedLines(8);
      lines.setInput(3, 1);
      const virtio = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines));
      const server = new VhostUserServer(virtio, {
        socketPath: `${tmp.dir}/weight.sock`,
        log: new RecordingLogger(),
        pollUs,
      });
      const c = RawClient.connect(`${tmp.dir}/weight.sock`);
      t.after(() => {
        c.close();
        server.close();
        lines.close();
        tmp.cleanup();
      });
      await c.handshake();
      const s = await rawActivate(c, { queueSize: 16 });
      t.after(() => s.dispose());
      const d = new MiniDriver(s);

      let placed = 0;
      let answered = 0;
      let bad = 0;
      let turns = 0; // event-loop turns while the ring is being served
      let turning = true;
      const turn = () => {
        if (!turning) return;
        turns++;
        setImmediate(turn);
      };
      const sense = lines.sense.bind(lines);
      lines.sense = (line) => {
        // The request being served is not in the used ring yet: at most two are in flight.
        for (const u of d.rq.collect()) {
          answered++;
          if (u.data[0] !== Status.OK || u.data[1] !== 1 || u.len !== 2) bad++;
        }
        if (placed < REQUESTS) {
          d.place(MessageType.GET_VALUE, 3);
          placed++;
        }
        return sense(line);
      };

      d.place(MessageType.GET_VALUE, 3);
      placed++;
      const turnsBefore = turns;
      setImmediate(turn);
      d.kick(0); // the only kick
      await waitFor(() => d.rqRing.usedIdx === REQUESTS % 0x10000, `all ${REQUESTS} requests used`, 20_000);
      turning = false;
      for (const u of d.rq.collect()) {
        answered++;
        if (u.data[0] !== Status.OK || u.data[1] !== 1 || u.len !== 2) bad++;
      }
      assert.equal(placed, REQUESTS);
      assert.equal(answered, REQUESTS);
      assert.equal(bad, 0);
      // At most 256 chains per turn: the loop turned at least REQUESTS / 256 times meanwhile.
      assert.ok(
        turns - turnsBefore >= Math.floor(REQUESTS / 256) - 1,
        `${turns - turnsBefore} loop turns while ${REQUESTS} chains were served`,
      );
    });
});
