// `vgpio serve --workers N` as a child process: devices in worker threads answer front-ends and
// their control sockets, log through the daemon's one stream, show on the --http dashboard and in
// the --trace file, refuse a second daemon on their paths, and leave no socket file after SIGTERM.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { ControlClient } from '../../src/control/control-client.ts';
import { Direction } from '../../src/protocol/constants.ts';
import { closeFd, socketListen, socketPair } from '../../src/native/index.ts';
import { Request } from '../../src/transports/vhost-user/message.ts';
import { RawClient, openChip, tempDir } from '../transports/vhost-user/harness.ts';
import { controlStatus, runCli, startDaemon, type Daemon } from './daemon-harness.ts';

/** The devices the dashboard's WebSocket hello lists. */
async function dashboardDevices(url: string): Promise<Array<{ label: string; status: { ngpio: number } }>> {
  const u = new URL(url);
  const ws = new WebSocket(`ws://${u.host}/ws${u.search}`);
  const msg = await new Promise<string>((resolve, reject) => {
    ws.once('message', (d) => resolve(String(d)));
    ws.once('error', reject);
  });
  ws.close();
  return (JSON.parse(msg) as { devices: Array<{ label: string; status: { ngpio: number } }> }).devices;
}

describe('vgpio serve --workers N (child process)', { timeout: 120_000 }, () => {
  const tmp = tempDir();
  const daemons: Daemon[] = [];
  after(async () => {
    await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
    tmp.cleanup();
  });
  const start = async (...args: Parameters<typeof startDaemon>) => {
    const d = await startDaemon(...args);
    daemons.push(d);
    return d;
  };

  test('--workers 2 with 4 devices: each answers GET/SET and control ops, --http lists them all, --trace records them, a second daemon is refused, SIGTERM removes every socket', async () => {
    const sockets = [0, 1, 2, 3].map((i) => `${tmp.dir}/d${i}.sock`);
    const config = `${tmp.dir}/four.json`;
    writeFileSync(
      config,
      JSON.stringify({ devices: sockets.map((socket, i) => ({ socket, lines: 4 + i, names: [`led${i}`] })) }),
    );
    const trace = `${tmp.dir}/four.vcd`;
    const d = await start(['--config', config, '--workers', '2', '--http', '127.0.0.1:0', '--trace', trace]);
    assert.match(d.stderr, / INFO {2}serving devices=4 workers=2 pid=\d+\n/);
    const pid = d.child.pid;
    for (const [i, s] of sockets.entries()) {
      // The worker's log records come out of the daemon's one stream, with the device's socket.
      assert.match(
        d.stderr,
        new RegExp(` INFO {2}control endpoint listening socket=${s} control=${s}.ctl\n`),
      );
      const chip = await openChip(s);
      try {
        assert.equal(chip.driver.ngpio, 4 + i);
        await chip.driver.setDirection(0, Direction.OUT);
        await chip.driver.setValue(0, 1);
        await chip.driver.setDirection(1, Direction.IN);
        const ctl = await ControlClient.connect(s);
        try {
          assert.equal(await ctl.getOutput(`led${i}`), 1);
          await ctl.setInput(1, 1);
          assert.equal(await chip.driver.getValue(1), 1);
          await ctl.pulse(2, 5);
        } finally {
          ctl.close();
        }
        const st = await controlStatus(s);
        assert.equal(st.socket, s);
        assert.equal(st.pid, pid);
        assert.equal(st.connected, true);
      } finally {
        await chip.close();
      }
    }

    const url = (await d.waitLog(/dashboard listening url=(\S+) /))[1];
    const listed = await dashboardDevices(url);
    assert.deepEqual(
      listed.map((x) => [x.label, x.status.ngpio]),
      [
        ['d0', 4],
        ['d1', 5],
        ['d2', 6],
        ['d3', 7],
      ],
    );

    // The live-socket refusal holds for sockets bound for workers.
    const second = await runCli(['serve', '--socket', sockets[2], '--workers', '1']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`${sockets[2]} is in use by pid ${pid}`));

    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
    for (const s of sockets) {
      assert.equal(existsSync(s), false, s);
      assert.equal(existsSync(`${s}.ctl`), false, `${s}.ctl`);
    }
    // Every device is a scope of the one trace, with the levels the front-ends drove.
    const vcd = readFileSync(trace, 'utf8');
    for (const i of [0, 1, 2, 3]) assert.match(vcd, new RegExp(`\\$scope module d${i} \\$end`));
    assert.match(vcd, /\$var wire 1 \S+ led3 \$end/);
  });

  test('devices on a board stay on the main thread (every simulated device of a board file), and the log says so', async () => {
    const config = `${tmp.dir}/board.json`;
    const a = `${tmp.dir}/b0.sock`;
    const b = `${tmp.dir}/b1.sock`;
    writeFileSync(
      config,
      JSON.stringify({
        workers: 1,
        devices: [
          { socket: a, name: 'a', lines: 2, pull: { 0: 'up' } },
          { socket: b, lines: 2, worker: 0 },
        ],
      }),
    );
    const d = await start(['--config', config]);
    for (const s of [a, b])
      assert.match(
        d.stderr,
        new RegExp(` INFO {2}device stays on the main thread socket=${s} reason="on the board"\n`),
      );
    assert.match(d.stderr, / INFO {2}serving devices=2 pid=\d+\n/);
    for (const s of [a, b]) {
      const chip = await openChip(s);
      try {
        await chip.driver.setDirection(1, Direction.IN);
        const ctl = await ControlClient.connect(s);
        try {
          await ctl.setInput(1, 1);
          assert.equal(await chip.driver.getValue(1), 1);
        } finally {
          ctl.close();
        }
      } finally {
        await chip.close();
      }
    }
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
    for (const s of [a, b]) assert.equal(existsSync(s) || existsSync(`${s}.ctl`), false, s);
  });

  test('--fd N --workers 1: an inherited listening socket is served from the worker, as fd:N; a connected one ends the daemon when it closes', async () => {
    const path = `${tmp.dir}/inherited.sock`;
    const lfd = socketListen(path, 4);
    let d: Daemon;
    try {
      d = await start(
        ['--fd', '3', '--control', `${tmp.dir}/inherited.ctl`, '--lines', '2', '--workers', '1'],
        {
          extraFds: [lfd],
        },
      );
    } finally {
      closeFd(lfd);
    }
    assert.match(d.stderr, / INFO {2}listening socket=fd:3\n/);
    const st = await openChip(path).then(async (chip) => {
      try {
        await chip.driver.setDirection(1, Direction.IN);
        return await controlStatus(`${tmp.dir}/inherited`);
      } finally {
        await chip.close();
      }
    });
    assert.deepEqual([st.socket, st.ngpio, st.lines[1].direction], ['fd:3', 2, 'input']);
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
    assert.equal(existsSync(`${tmp.dir}/inherited.ctl`), false);
    assert.equal(existsSync(path), true, "the inherited socket file is its owner's, not removed");

    const [mine, theirs] = socketPair();
    let p: Daemon;
    try {
      p = await start(['--fd', '3', '--control', `${tmp.dir}/pair.ctl`, '--lines', '3', '--workers', '1'], {
        extraFds: [theirs],
      });
    } finally {
      closeFd(theirs);
    }
    const raw = new RawClient(mine);
    await raw.handshake();
    assert.equal(await raw.u64(Request.GET_QUEUE_NUM), 2n);
    raw.close();
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    assert.match(p.stderr, /front-end disconnected reason="peer closed the connection"/);
    assert.equal(existsSync(`${tmp.dir}/pair.ctl`), false);
  });

  test('bad --workers values and "worker" fields are usage errors naming the field', async () => {
    const r = await runCli(['serve', '--socket', `${tmp.dir}/x.sock`, '--workers', '65']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--workers must be 0\.\.64 \(got 65\)/);
    const config = `${tmp.dir}/bad.json`;
    writeFileSync(
      config,
      JSON.stringify({ workers: 2, devices: [{ socket: `${tmp.dir}/y.sock`, worker: 2 }] }),
    );
    const f = await runCli(['serve', '--config', config]);
    assert.equal(f.code, 2);
    assert.match(f.stderr, /devices\[0\]\.worker: expected a worker 0\.\.1 \("workers" is 2\)/);
    writeFileSync(config, JSON.stringify({ devices: [{ socket: `${tmp.dir}/y.sock`, worker: 1 }] }));
    const g = await runCli(['serve', '--config', config, '--workers', '1']);
    assert.equal(g.code, 2);
    assert.match(g.stderr, /devices\[0\]\.worker: expected a worker 0\.\.0 \(--workers 1\)/);
    assert.equal(existsSync(`${tmp.dir}/y.sock`), false);
  });
});
