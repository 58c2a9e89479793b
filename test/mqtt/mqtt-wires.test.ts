// Two daemons as two "hosts" (separate processes, prefixes lab/hostA and lab/hostB) on one real
// Mosquitto, each with the TypeScript driver over vhost-user as its guest: a wire from A's output to
// B's input through the broker (its latency against a local board wire), then the broker stopped
// and restarted mid-run: the guests keep going, and nothing sent at QoS 1 is lost or reordered.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { ControlClient } from '../../src/control/control-client.ts';
import type { Chip } from '../../src/driver/chip.ts';
import type { EdgeEvent } from '../../src/driver/edge-event.ts';
import type { LineRequest } from '../../src/driver/line-request.ts';
import { startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { openChip, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';
import { HAVE_MOSQUITTO, Mosquitto } from './mosquitto.ts';
import { Recorder } from './mqtt-recorder.ts';

const skip = HAVE_MOSQUITTO
  ? false
  : 'mosquitto is not installed (apt-get install mosquitto mosquitto-clients)';
const LINK = 'lab/links/a0';

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

describe('MQTT bridge: two hosts wired through the broker', { skip, timeout: 180_000 }, () => {
  const tmp = tempDir();
  let broker: Mosquitto;
  let hostA: Daemon;
  let hostB: Daemon;
  let chipA: Chip;
  let chipB: Chip;
  let reqA: LineRequest;
  let reqB: LineRequest;
  let rec: Recorder;
  let watcher: Recorder;
  const edgesA: EdgeEvent[] = [];
  const edgesB: EdgeEvent[] = [];

  before(async () => {
    broker = await Mosquitto.start(tmp.dir);
    const board = (name: string, extra: object) => {
      const file = `${tmp.dir}/${name}.json`;
      writeFileSync(
        file,
        JSON.stringify({ devices: [{ socket: `${tmp.dir}/${name}.sock`, name, lines: 4 }], ...extra }),
      );
      return file;
    };
    const fileA = board('a', {
      wires: [{ from: 'a:2', to: 'a:3' }], // a local wire, for comparison
      mqtt: {
        url: broker.url,
        prefix: 'lab/hostA',
        wires: [{ from: 'a:0', topic: LINK }],
        reconnect: { minMs: 100, maxMs: 400 },
      },
    });
    const fileB = board('b', {
      mqtt: {
        url: broker.url,
        prefix: 'lab/hostB',
        commands: ['b:2'],
        wires: [{ topic: LINK, to: 'b:1' }],
        // Slow to come back: commands published meanwhile wait in its session on the broker.
        reconnect: { minMs: 1500, maxMs: 1500 },
      },
    });
    rec = await Recorder.connect(broker.url, ['lab/#']);
    // A persistent session of its own: what A publishes while this client is cut off waits for it.
    watcher = await Recorder.connect(broker.url, ['lab/hostA/a/0/event'], {
      clientId: 'h10-watcher',
      clean: false,
    });
    [hostA, hostB] = await Promise.all([startDaemon(['--config', fileA]), startDaemon(['--config', fileB])]);
    await Promise.all([hostA.waitLog(/mqtt connected/), hostB.waitLog(/mqtt connected/)]);
    [chipA, chipB] = await Promise.all([openChip(`${tmp.dir}/a.sock`), openChip(`${tmp.dir}/b.sock`)]);
    reqA = await chipA.requestLines({
      consumer: 'host-a',
      lines: {
        0: { direction: 'output', outputValue: 0 },
        2: { direction: 'output', outputValue: 0 },
        3: { direction: 'input', edge: 'both' },
      },
    });
    reqB = await chipB.requestLines({
      consumer: 'host-b',
      lines: { 1: { direction: 'input', edge: 'both' }, 2: { direction: 'input', edge: 'both' } },
    });
    reqA.on('edge', (e) => edgesA.push(e));
    reqB.on('edge', (e) => edgesB.push(e));
  });
  after(async () => {
    await settle(chipA?.close());
    await settle(chipB?.close());
    await hostA?.stop('SIGKILL');
    await hostB?.stop('SIGKILL');
    await rec?.close();
    await watcher?.close();
    await broker?.stop();
    tmp.cleanup();
  });

  it("A's output drives B's input through the broker, edge for edge (latency against a local wire)", async (t: TestContext) => {
    const N = 20;
    const overMqtt: number[] = [];
    const local: number[] = [];
    for (let i = 0; i < N; i++) {
      const v = i % 2 === 0 ? 1 : 0;
      const type = v ? 'rising' : 'falling';
      let n = edgesB.filter((e) => e.offset === 1).length;
      let t0 = process.hrtime.bigint();
      await reqA.setValue(0, v);
      await waitFor(() => edgesB.filter((e) => e.offset === 1).length === n + 1, `edge ${i} on b:1`);
      const eb = edgesB.filter((e) => e.offset === 1).at(-1)!;
      assert.equal(eb.type, type);
      overMqtt.push(Number(eb.timestampNs - t0) / 1e6);
      n = edgesA.filter((e) => e.offset === 3).length;
      t0 = process.hrtime.bigint();
      await reqA.setValue(2, v);
      await waitFor(() => edgesA.filter((e) => e.offset === 3).length === n + 1, `edge ${i} on a:3`);
      local.push(Number(edgesA.filter((e) => e.offset === 3).at(-1)!.timestampNs - t0) / 1e6);
    }
    assert.equal(edgesB.filter((e) => e.offset === 1).length, N, 'each edge exactly once');
    const fmt = (xs: number[]) =>
      `p50 ${percentile(xs, 50).toFixed(2)} ms, p99 ${percentile(xs, 99).toFixed(2)} ms`;
    t.diagnostic(`guest output → other host's guest edge, over MQTT (QoS 1): ${fmt(overMqtt)}`);
    t.diagnostic(`the same over a local board wire: ${fmt(local)}`);
    t.diagnostic(
      `added by the broker hop: ${(percentile(overMqtt, 50) - percentile(local, 50)).toFixed(2)} ms (p50)`,
    );
  });

  it("a line an MQTT wire drives cannot be set by hand (B's control socket refuses it)", async () => {
    const c = await ControlClient.connect(`${tmp.dir}/b.sock`);
    try {
      const r = await c.request({ op: 'input', line: 1, value: 1 });
      assert.equal(r.ok, false);
      assert.match(JSON.stringify(r), /driven by MQTT topic lab\/links\/a0/);
    } finally {
      c.close();
    }
  });

  it('broker stopped and restarted mid-run: guests undisturbed, nothing lost at QoS 1, commands applied in order', async () => {
    const eventsBefore = watcher.on('lab/hostA/a/0/event').length;
    await broker.stop();
    await Promise.all([hostA.waitLog(/mqtt disconnected/), hostB.waitLog(/mqtt disconnected/)]);
    // Broker down: A's guest keeps driving, and A's local wire keeps working.
    const levels = [1, 0, 1, 0, 1] as const;
    for (const v of levels) {
      const n = edgesA.filter((e) => e.offset === 3).length;
      await reqA.setValue(0, v);
      await reqA.setValue(2, v);
      await waitFor(
        () => edgesA.filter((e) => e.offset === 3).length === n + 1,
        'the local wire while the broker is down',
      );
    }
    assert.deepEqual(await reqA.getValues([0, 2, 3]), [1, 1, 1]);
    await broker.run();
    // Commands for B while B is still waiting to reconnect: the broker queues them in B's session.
    const operator = await Recorder.connect(broker.url, []);
    try {
      for (const v of ['1', '0', '1', '0', '1']) await operator.publish('lab/hostB/b/2/set', v);
    } finally {
      await operator.close();
    }
    await hostB.waitLog(/mqtt connected.*sessionPresent=true/, 10_000);
    // Every output event A queued while the broker was down, in order.
    await watcher.until(
      () => watcher.on('lab/hostA/a/0/event').length >= eventsBefore + levels.length,
      'the events A published while the broker was down',
      10_000,
    );
    const got = watcher
      .on('lab/hostA/a/0/event')
      .slice(eventsBefore)
      .map((m) => (JSON.parse(m.payload) as { type: string; level: number }).level);
    assert.deepEqual(got, [...levels]);
    // B applied the queued commands in order (its state went 1 0 1 0 1), and follows A's line again.
    await rec.until(
      () => {
        const s = rec.on('lab/hostB/b/2/state').map((m) => m.payload);
        return s.join('').endsWith('10101');
      },
      "B's queued commands applied in order",
      10_000,
    );
    await waitForLevel(reqB, 1, 1);
    await waitForLevel(reqB, 2, 1);
    assert.match(hostA.stderr, /mqtt connected.*sessionPresent=true/);
  });

  it('a broker that lost everything (its database gone) gets the retained state again on reconnect', async () => {
    const connects = (d: Daemon) => (d.stderr.match(/mqtt connected/g) ?? []).length;
    const before = connects(hostA);
    await broker.stop();
    rmSync(`${broker.dir}/mosquitto.db`, { force: true });
    await broker.run();
    await waitFor(() => connects(hostA) > before, 'host A to reconnect', 10_000);
    const fresh = await Recorder.connect(broker.url, [
      'lab/hostA/status',
      'lab/hostA/a/0/state',
      'lab/hostA/a/0/config',
      LINK,
    ]);
    try {
      await fresh.value('lab/hostA/status', 'online');
      await fresh.value('lab/hostA/a/0/state', '1');
      await fresh.value(LINK, '1');
      // Retained: a client arriving now gets them from the broker.
      const late = await Recorder.connect(broker.url, ['lab/hostA/a/0/state']);
      await late.value('lab/hostA/a/0/state', '1');
      assert.equal(late.on('lab/hostA/a/0/state')[0].retain, true);
      await late.close();
      assert.equal(JSON.parse(fresh.last('lab/hostA/a/0/config')!).direction, 'output');
    } finally {
      await fresh.close();
    }
  });

  it('SIGTERM: the daemon says offline itself and exits 0', async () => {
    const exit = await hostB.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });
    await rec.value('lab/hostB/status', 'offline');
    assert.match(hostB.stderr, /shutting down/);
  });
});

async function waitForLevel(req: LineRequest, line: number, level: 0 | 1): Promise<void> {
  const end = Date.now() + 5000;
  while ((await req.getValue(line)) !== level) {
    if (Date.now() > end) assert.fail(`line ${line} did not read ${level}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
