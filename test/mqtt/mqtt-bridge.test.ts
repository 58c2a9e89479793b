// The bridge in real daemons (vgpio serve --config, child processes) against a real Mosquitto, with
// the TypeScript driver over vhost-user as each daemon's guest: topics, commands (good, malformed,
// unauthorised), Home Assistant discovery, the last will, and the wrong password.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import type { Chip } from '../../src/driver/chip.ts';
import type { EdgeEvent } from '../../src/driver/edge-event.ts';
import type { LineRequest } from '../../src/driver/line-request.ts';
import { controlStatus, startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { openChip, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';
import { HAVE_MOSQUITTO, Mosquitto } from './mosquitto.ts';
import { Recorder } from './mqtt-recorder.ts';

const skip = HAVE_MOSQUITTO
  ? false
  : 'mosquitto is not installed (apt-get install mosquitto mosquitto-clients)';

describe('MQTT bridge: one daemon on a broker', { skip, timeout: 120_000 }, () => {
  const tmp = tempDir();
  const sock = `${tmp.dir}/a.sock`;
  const P = 'lab/host1/a';
  let broker: Mosquitto;
  let daemon: Daemon;
  let chip: Chip;
  let req: LineRequest;
  let rec: Recorder;
  const edges: EdgeEvent[] = [];

  before(async () => {
    broker = await Mosquitto.start(tmp.dir);
    const file = `${tmp.dir}/board.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [{ socket: sock, name: 'a', lines: 4, names: ['led', 'btn'] }],
        mqtt: {
          url: broker.url,
          prefix: 'lab/host1',
          commands: ['a:btn', 'a:3'],
          homeAssistant: true,
          reconnect: { minMs: 100, maxMs: 1000 },
        },
      }),
    );
    rec = await Recorder.connect(broker.url, ['lab/#', 'homeassistant/#']);
    daemon = await startDaemon(['--config', file]);
    await daemon.waitLog(/mqtt connected/);
    chip = await openChip(sock);
    req = await chip.requestLines({
      consumer: 'mqtt-test',
      lines: { 0: { direction: 'output', outputValue: 0 }, 1: { direction: 'input', edge: 'both' } },
    });
    req.on('edge', (e) => edges.push(e));
  });
  after(async () => {
    await settle(chip?.close());
    await daemon?.stop('SIGKILL');
    await rec?.close();
    await broker?.stop();
    tmp.cleanup();
  });

  it('publishes status online, and each line config and state, retained', async () => {
    await rec.value('lab/host1/status', 'online');
    await rec.value(`${P}/0/config`, JSON.stringify({ direction: 'output', edge: 'none', name: 'led' }));
    await rec.value(`${P}/1/config`, JSON.stringify({ direction: 'input', edge: 'both', name: 'btn' }));
    await rec.value(`${P}/0/state`, '0');
    // A client arriving now gets them from the broker (retained).
    const late = await Recorder.connect(broker.url, [`${P}/+/config`, 'lab/host1/status']);
    try {
      await late.value(`${P}/1/config`, JSON.stringify({ direction: 'input', edge: 'both', name: 'btn' }));
      assert.ok(late.on('lab/host1/status').every((m) => m.retain));
    } finally {
      await late.close();
    }
  });

  it("a guest's output changes show on state (retained) and as an output event", async () => {
    await req.setValue(0, 1);
    await rec.value(`${P}/0/state`, '1');
    await rec.until(() => rec.on(`${P}/0/event`).length >= 1, 'an output event');
    const ev = JSON.parse(rec.on(`${P}/0/event`).at(-1)!.payload) as Record<string, unknown>;
    assert.equal(ev.type, 'output');
    assert.equal(ev.level, 1);
    assert.match(String(ev.timestampNs), /^\d+$/);
    await req.setValue(0, 0);
    await rec.value(`${P}/0/state`, '0');
    await rec.until(() => rec.on(`${P}/0/event`).length >= 2, 'a second output event');
    assert.deepEqual(
      rec.on(`${P}/0/event`).map((m) => (JSON.parse(m.payload) as { level: number }).level),
      [1, 0],
    );
  });

  it("a publish on set reaches the guest's edge events, and interrupts are published", async () => {
    const before = edges.length;
    await rec.publish(`${P}/1/set`, '1');
    await waitFor(() => edges.length === before + 1, 'a rising edge');
    assert.equal(edges.at(-1)!.type, 'rising');
    await rec.value(`${P}/1/state`, '1');
    await rec.publish(`${P}/1/set`, '0');
    await waitFor(() => edges.length === before + 2, 'a falling edge');
    assert.equal(edges.at(-1)!.type, 'falling');
    await rec.value(`${P}/1/state`, '0');
    await rec.until(
      () => rec.on(`${P}/1/event`).filter((m) => m.payload.includes('"interrupt"')).length >= 2,
      'two interrupt events',
    );
  });

  it('malformed and unauthorised commands are rejected with a log line and never reach the guest', async () => {
    const before = edges.length;
    const cases: Array<[string, string, boolean, RegExp]> = [
      [`${P}/1/set`, 'on', false, /mqtt command rejected.*expected a payload of 0 or 1, got \\?"on\\?"/],
      [
        `${P}/1/set`,
        '1'.repeat(100),
        false,
        /mqtt command rejected.*expected a payload of 0 or 1, got 100 bytes/,
      ],
      [`${P}/1/set`, 'x'.repeat(40), false, /mqtt command rejected.*got \\?"x{32}\\?"…/],
      [`${P}/2/set`, '1', false, /mqtt command rejected.*a:2 takes no commands/],
      [`${P}/9/set`, '1', false, /mqtt command rejected.*no published line a:9/],
    ];
    for (const [topic, payload, retain, log] of cases) {
      await rec.publish(topic, payload, retain);
      await daemon.waitLog(log);
    }
    // A good command after them still works, and is the only edge the guest saw.
    await rec.publish(`${P}/3/set`, '1');
    await rec.value(`${P}/3/state`, '1');
    assert.equal(edges.length, before);
    const s = await controlStatus(sock);
    assert.deepEqual(
      s.lines.map((l) => l.level),
      ['low', 'low', 'low', 'high'],
    );
  });

  it('announces the lines to Home Assistant: a switch for each line taking commands, else a binary sensor', async () => {
    await rec.until(
      () => rec.on('homeassistant/switch/lab_host1/a_1/config').length > 0,
      'the switch discovery message',
    );
    const sw = JSON.parse(rec.last('homeassistant/switch/lab_host1/a_1/config')!) as Record<string, unknown>;
    assert.equal(sw.command_topic, `${P}/1/set`);
    assert.equal(sw.state_topic, `${P}/1/state`);
    assert.equal(sw.availability_topic, 'lab/host1/status');
    assert.equal(sw.name, 'btn');
    const bs = JSON.parse(rec.last('homeassistant/binary_sensor/lab_host1/a_0/config')!) as Record<
      string,
      unknown
    >;
    assert.equal(bs.state_topic, `${P}/0/state`);
    assert.equal(bs.command_topic, undefined);
  });

  it('the last will: a daemon killed outright shows offline', async () => {
    await daemon.stop('SIGKILL');
    await rec.value('lab/host1/status', 'offline');
  });
});

describe('MQTT bridge: a broker with a password file and an ACL', { skip, timeout: 120_000 }, () => {
  const tmp = tempDir();
  let broker: Mosquitto;
  const daemons: Daemon[] = [];
  const users = { daemon: 'daemon-secret', viewer: 'viewer-secret', operator: 'operator-secret' };
  const acl = [
    'user daemon',
    'topic readwrite lab/#',
    'user viewer',
    'topic read lab/#',
    'user operator',
    'topic read lab/#',
    'topic write lab/+/+/+/set',
    '',
  ].join('\n');

  const serve = async (name: string, password: string, args: string[] = []) => {
    const file = `${tmp.dir}/${name}.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [{ socket: `${tmp.dir}/${name}.sock`, name, lines: 2 }],
        mqtt: {
          url: broker.url,
          username: 'daemon',
          password,
          prefix: `lab/${name}`,
          commands: [`${name}:1`],
          reconnect: { minMs: 200, maxMs: 400 },
        },
      }),
    );
    const d = await startDaemon(['--config', file, ...args]);
    daemons.push(d);
    return d;
  };

  before(async () => {
    broker = await Mosquitto.start(tmp.dir, { users, acl });
  });
  after(async () => {
    for (const d of daemons) await d.stop('SIGKILL');
    await broker?.stop();
    tmp.cleanup();
  });

  it('wrong credentials are refused: logged, retried, and the device keeps serving', async () => {
    const d = await serve('wrong', 'not-the-password', ['--log-level', 'debug']);
    await d.waitLog(/broker refused the connection/);
    // Retried with backoff: 200 ms, doubled up to the 400 ms cap.
    await d.waitLog(/(mqtt reconnect scheduled.*\n[^]*){3}/);
    const waits = [...d.stderr.matchAll(/mqtt reconnect scheduled.* inMs=(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(waits.slice(0, 3), [200, 400, 400]);
    assert.doesNotMatch(d.stderr, /mqtt connected/);
    const s = await controlStatus(`${tmp.dir}/wrong.sock`);
    assert.equal(s.ngpio, 2);
    await assert.rejects(
      Recorder.connect(broker.url, [], { username: 'viewer', password: 'wrong', reconnectPeriod: 0 }),
      /Bad username or password|Not authorized/,
    );
    await assert.rejects(Recorder.connect(broker.url, [], { reconnectPeriod: 0 }), /Not authorized|Bad user/);
  });

  it('the ACL: a viewer reads state but its set never reaches the device; an operator drives the line', async () => {
    const operator = await Recorder.connect(broker.url, [], {
      username: 'operator',
      password: users.operator,
    });
    // A retained command, left on the broker before the daemon came: replayed on subscribe, not obeyed.
    await operator.publish('lab/ok/ok/1/set', '1', true);
    const d = await serve('ok', users.daemon);
    await d.waitLog(/mqtt command rejected.*a retained command is not obeyed/);
    await operator.publish('lab/ok/ok/1/set', '', true); // clears it
    const viewer = await Recorder.connect(broker.url, ['lab/ok/#'], {
      username: 'viewer',
      password: users.viewer,
    });
    try {
      await viewer.value('lab/ok/ok/1/state', '0');
      await viewer.publish('lab/ok/ok/1/set', '1'); // the broker drops it (PUBACK all the same, MQTT 3.1.1)
      await operator.publish('lab/ok/ok/0/set', '1'); // not in commands: the daemon refuses it
      await d.waitLog(/mqtt command rejected.*ok:0 takes no commands/);
      assert.equal((await controlStatus(`${tmp.dir}/ok.sock`)).lines[1].level, 'low');
      await operator.publish('lab/ok/ok/1/set', '1');
      await viewer.value('lab/ok/ok/1/state', '1');
      assert.equal((await controlStatus(`${tmp.dir}/ok.sock`)).lines[1].level, 'high');
    } finally {
      await viewer.close();
      await operator.close();
    }
  });
});

describe('MQTT bridge: a section whose references do not hold', () => {
  it('vgpio serve does not start: every bad reference named, exit 1, sockets gone', async () => {
    const tmp = tempDir();
    try {
      const file = `${tmp.dir}/board.json`;
      writeFileSync(
        file,
        JSON.stringify({
          devices: [{ socket: `${tmp.dir}/a.sock`, name: 'a', lines: 2 }],
          wires: [{ from: 'a:0', to: 'a:1' }],
          mqtt: { url: 'mqtt://127.0.0.1:1', commands: ['a:1', 'b:0'] },
        }),
      );
      const d = await startDaemon(['--config', file], { wait: false });
      const exit = await d.exited;
      assert.equal(exit.code, 1, d.stderr);
      assert.match(
        d.stderr,
        /cannot start .*mqtt\.commands\[0\]: a:1 is driven by wires\[0\] from a:0: it takes no commands/,
      );
      assert.match(d.stderr, /mqtt\.commands\[1\]: no device \\?"b\\?" for/);
      assert.equal(existsSync(`${tmp.dir}/a.sock`), false);
    } finally {
      tmp.cleanup();
    }
  });
});
