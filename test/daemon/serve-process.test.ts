// `vgpio serve` as a child process: socket paths and modes, --config, --fd (listening and
// connected), logging flags, signals, and front-ends coming and going.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { Chip } from '../../src/driver/chip.ts';
import { closeFd, setNonBlocking, socketListen, socketPair } from '../../src/native/index.ts';
import { Direction } from '../../src/protocol/constants.ts';
import { Request } from '../../src/transports/vhost-user/message.ts';
import { RawClient, WIRE_FEATURES, openChip, tempDir } from '../transports/vhost-user/harness.ts';
import { command as serveCommand } from '../../src/cli/serve-command.ts';
import { controlStatus, runCli, startDaemon, type Daemon } from './daemon-harness.ts';

const USAGE = `usage: ${serveCommand.usage}\n`;
const mode = (p: string) => lstatSync(p).mode & 0o777;
const isSocket = (p: string) => existsSync(p) && lstatSync(p).isSocket();

/** Opens a chip on `path`, runs `fn`, closes it. */
async function withChip<T>(path: string, fn: (chip: Chip) => Promise<T>): Promise<T> {
  const chip = await openChip(path);
  try {
    return await fn(chip);
  } finally {
    await chip.close();
  }
}

const status = controlStatus;

describe('vgpio serve (child process)', { timeout: 180_000 }, () => {
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

  test('--print-capabilities prints {"type":"gpio"} and exits 0', async () => {
    assert.deepEqual(await runCli(['serve', '--print-capabilities']), {
      code: 0,
      stdout: '{"type":"gpio"}\n',
      stderr: '',
    });
  });

  test('--socket PATH serves exactly PATH; PATH and PATH.ctl are mode 0600; SIGTERM exits 0 and removes both', async () => {
    const path = `${tmp.dir}/exact.sock`;
    const d = await start(['--socket', path, '--lines', '4', '--names', 'a,b']);
    assert.equal(isSocket(path), true);
    assert.equal(isSocket(`${path}.ctl`), true);
    assert.equal(existsSync(`${path}0`), false, 'no suffix');
    assert.equal(mode(path), 0o600);
    assert.equal(mode(`${path}.ctl`), 0o600);
    assert.match(d.stderr, new RegExp(` INFO {2}listening socket=${path}\n`));

    const names = await withChip(path, async (chip) => chip.driver.names);
    assert.deepEqual(names, ['a', 'b', '', '']);
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
    assert.match(d.stderr, / INFO {2}shutting down reason=SIGTERM\n/);
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(`${path}.ctl`), false);
  });

  test('--socket-mode 0660 is honoured; SIGINT exits 0 and removes both sockets', async () => {
    const path = `${tmp.dir}/mode.sock`;
    const d = await start(['--socket', path, '--socket-mode', '0660']);
    assert.equal(mode(path), 0o660);
    assert.equal(mode(`${path}.ctl`), 0o660);
    // With a front-end connected: it is disconnected, the daemon still exits 0.
    const raw = RawClient.connect(path);
    await raw.handshake();
    assert.deepEqual(await d.stop('SIGINT'), { code: 0, signal: null });
    assert.match(d.stderr, / INFO {2}shutting down reason=SIGINT\n/);
    await raw.expectClosed();
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(`${path}.ctl`), false);
  });

  test('--config FILE with two devices: both serve, independently', async () => {
    const one = `${tmp.dir}/one.sock`;
    const two = `${tmp.dir}/two.sock`;
    const file = `${tmp.dir}/devices.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          { socket: one, lines: 3, names: ['x', 'y', 'z'] },
          { socket: two, lines: 5, socketMode: '0640' },
        ],
      }),
    );
    const d = await start(['--config', file]);
    assert.match(d.stderr, / INFO {2}serving devices=2 pid=\d+\n/);
    assert.deepEqual(
      [mode(one), mode(`${one}.ctl`), mode(two), mode(`${two}.ctl`)],
      [0o600, 0o600, 0o640, 0o640],
    );

    const chip1 = await openChip(one);
    const chip2 = await openChip(two);
    try {
      assert.deepEqual([chip1.driver.ngpio, chip1.driver.names], [3, ['x', 'y', 'z']]);
      assert.deepEqual([chip2.driver.ngpio, chip2.driver.names], [5, ['', '', '', '', '']]);
      await chip1.driver.setDirection(1, Direction.OUT);
      assert.equal(await chip2.driver.getDirection(1), Direction.NONE);
      assert.deepEqual(
        [(await status(one)).lines[1].direction, (await status(two)).lines[1].direction],
        ['output', 'none'],
      );
    } finally {
      await chip1.close();
      await chip2.close();
    }
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
    assert.deepEqual([one, `${one}.ctl`, two, `${two}.ctl`].map(existsSync), [false, false, false, false]);
  });

  test('--config where the second device cannot start: exit 1, the first device cleaned up', async () => {
    const one = `${tmp.dir}/first.sock`;
    const blocker = `${tmp.dir}/blocker`;
    writeFileSync(blocker, 'not a socket');
    const file = `${tmp.dir}/half.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          { socket: one, lines: 1 },
          { socket: blocker, lines: 1 },
        ],
      }),
    );
    const r = await runCli(['serve', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(` ERROR cannot start error="${blocker} exists and is not a socket: not removing it"\n`),
    );
    assert.deepEqual([existsSync(one), existsSync(`${one}.ctl`), existsSync(blocker)], [false, false, true]);
  });

  test('a front-end disconnect: the daemon keeps running, keeps line state and accepts again', async () => {
    const path = `${tmp.dir}/again.sock`;
    const d = await start(['--socket', path, '--lines', '4']);
    await withChip(path, async (chip) => {
      await chip.driver.setValue(2, 1);
      await chip.driver.setDirection(2, Direction.OUT);
    });
    await d.waitLog(/front-end disconnected; listening again/);
    // Abruptly this time: a raw client that just goes away.
    const raw = RawClient.connect(path);
    assert.equal(await raw.u64(Request.GET_FEATURES), WIRE_FEATURES);
    raw.close();
    await withChip(path, async (chip) => {
      assert.equal(await chip.driver.getDirection(2), Direction.OUT);
      assert.equal(await chip.driver.getValue(2), 1);
    });
    assert.equal(d.exit, null);
    assert.equal(d.stderr.match(/front-end connected/g)?.length, 3);
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  });

  test('--log-level debug shows message names; the default (info) does not', async () => {
    const path = `${tmp.dir}/debug.sock`;
    const d = await start(['--socket', path, '--log-level', 'debug']);
    const raw = RawClient.connect(path);
    assert.equal(await raw.u64(Request.GET_QUEUE_NUM), 2n);
    raw.close();
    await d.waitLog(new RegExp(` DEBUG message socket=${path} request=GET_QUEUE_NUM flags=1 size=0 fds=0\n`));
    await d.stop();

    const quiet = await start(['--socket', `${tmp.dir}/info.sock`]);
    const raw2 = RawClient.connect(`${tmp.dir}/info.sock`);
    assert.equal(await raw2.u64(Request.GET_QUEUE_NUM), 2n);
    raw2.close();
    await quiet.waitLog(/front-end disconnected/);
    await quiet.stop();
    assert.equal(/DEBUG/.test(quiet.stderr), false);
  });

  test('--log-format json: every stderr line is a JSON object', async () => {
    const path = `${tmp.dir}/json.sock`;
    const d = await start(['--socket', path, '--log-format', 'json', '--log-level', 'debug']);
    await withChip(path, async () => {});
    await d.waitLog(/"msg":"front-end disconnected; listening again"/);
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
    const lines = d.stderr.trimEnd().split('\n');
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const o of objs) {
      assert.equal(typeof o.time, 'string');
      assert.ok(!Number.isNaN(Date.parse(o.time as string)));
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level as string));
    }
    const pick = (msg: string) => objs.filter((o) => o.msg === msg).map(({ time: _t, ...rest }) => rest);
    assert.deepEqual(pick('listening'), [{ level: 'info', msg: 'listening', socket: path }]);
    assert.deepEqual(pick('serving'), [{ level: 'info', msg: 'serving', devices: 1, pid: d.child.pid }]);
    assert.deepEqual(pick('features negotiated'), [
      { level: 'info', msg: 'features negotiated', features: '0x170000001', socket: path },
    ]);
    assert.deepEqual(pick('message')[0], {
      level: 'debug',
      msg: 'message',
      request: 'GET_FEATURES',
      flags: 1,
      size: 0,
      fds: 0,
      socket: path,
    });
  });

  test('--fd N with a listening socket: serves it, also a front-end that connected before the daemon started', async () => {
    const path = `${tmp.dir}/listen-fd.sock`;
    const ctl = `${tmp.dir}/listen-fd.ctl`;
    const lfd = socketListen(path, 4);
    const early = RawClient.connect(path); // waits in the backlog
    early.send(Request.GET_FEATURES);
    let d: Daemon;
    try {
      d = await start(['--fd', '3', '--control', ctl, '--lines', '2'], { extraFds: [lfd] });
    } finally {
      closeFd(lfd);
    }
    const m = await early.next(5000);
    assert.ok(m, 'the early front-end was dropped');
    assert.equal(m.request, Request.GET_FEATURES);
    early.close();
    await d.waitLog(/front-end disconnected; listening again/);

    const st = await withChip(path, async (chip) => {
      await chip.driver.setDirection(1, Direction.IN);
      return status(`${tmp.dir}/listen-fd`); // the control socket is "<PATH>.ctl"
    });
    assert.deepEqual(
      [st.socket, st.connected, st.features, st.irqNegotiated, st.ngpio, st.lines[1].direction],
      ['fd:3', true, '0x130000001', true, 2, 'input'],
    );
    await withChip(path, async (chip) => assert.equal(await chip.driver.getDirection(1), Direction.IN));
    assert.deepEqual(await d.stop('SIGTERM'), { code: 0, signal: null });
    assert.equal(existsSync(ctl), false);
  });

  test('--fd N with a blocking listening socket (as systemd hands them over): starts at once and serves', async () => {
    const path = `${tmp.dir}/blocking.sock`;
    const lfd = socketListen(path, 4);
    setNonBlocking(lfd, false);
    let d: Daemon;
    try {
      d = await start(['--fd', '3', '--control', `${tmp.dir}/blocking.ctl`, '--lines', '1'], {
        extraFds: [lfd],
      });
    } finally {
      closeFd(lfd);
    }
    await withChip(path, async (chip) => assert.equal(chip.driver.ngpio, 1));
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  });

  test('--fd N with a connected socket: serves that front-end, exits 0 when it goes away', async () => {
    const [mine, theirs] = socketPair();
    const ctlBase = `${tmp.dir}/pair`;
    let d: Daemon;
    try {
      d = await start(['--fd', '3', '--control', `${ctlBase}.ctl`, '--lines', '3'], { extraFds: [theirs] });
    } finally {
      closeFd(theirs);
    }
    const raw = new RawClient(mine);
    await raw.handshake();
    assert.equal(await raw.u64(Request.GET_QUEUE_NUM), 2n);
    const st = await status(ctlBase);
    assert.deepEqual([st.socket, st.connected, st.ngpio, st.features], ['fd:3', true, 3, null]);
    raw.close();
    assert.deepEqual(await d.exited, { code: 0, signal: null });
    assert.match(d.stderr, /front-end disconnected reason="peer closed the connection"/);
    assert.equal(existsSync(`${ctlBase}.ctl`), false);
  });

  test('usage errors exit 2 with a hint; a path that is not a socket exits 1', async () => {
    assert.deepEqual(await runCli(['serve']), {
      code: 2,
      stdout: '',
      stderr: 'vgpio: give exactly one of --socket PATH, --fd N or --config FILE\n' + USAGE,
    });
    assert.deepEqual(await runCli(['serve', '--socket', `${tmp.dir}/x.sock`, '--log-level', 'loud']), {
      code: 2,
      stdout: '',
      stderr: 'vgpio: --log-level must be debug, info, warn or error\n' + USAGE,
    });
    assert.deepEqual(await runCli(['serve', '--socket', `${tmp.dir}/x.sock`, '--socket-mode', '999']), {
      code: 2,
      stdout: '',
      stderr: 'vgpio: --socket-mode: expected an octal mode like "0660", got "999"\n' + USAGE,
    });
    const file = `${tmp.dir}/plain-file`;
    writeFileSync(file, 'not a socket');
    const r = await runCli(['serve', '--socket', file]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(` ERROR cannot start error="${file} exists and is not a socket: not removing it"\n`),
    );
    assert.equal(existsSync(file), true, 'the file is left alone');
  });
});
