// `vgpio input|output|status` as child processes against a running `vgpio serve`, with a guest
// (VhostUserFrontend + Chip in this process) on the other side: exact stdout, stderr, exit codes.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import type { DeviceStatus } from '../../src/control/control-protocol.ts';
import { Chip } from '../../src/driver/chip.ts';
import type { EdgeEvent } from '../../src/driver/edge-event.ts';
import type { LineRequest } from '../../src/driver/line-request.ts';
import { runCli, startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { openChip, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

const counters = (edges: number, delivered: number, latched = 0, invalid = 0) => ({
  edges,
  delivered,
  latched,
  coalesced: 0,
  invalid,
});

describe('vgpio input / output / status', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/cli.sock`;
  let daemon: Daemon;
  let chip: Chip;
  let req: LineRequest;
  const edges: EdgeEvent[] = [];

  before(async () => {
    daemon = await startDaemon(['--socket', path, '--lines', '4', '--names', 'led,btn']);
    chip = await openChip(path);
    req = await chip.requestLines({
      consumer: 'cli-test',
      lines: {
        0: { direction: 'output', outputValue: 1 },
        1: { direction: 'input', edge: 'rising' },
        3: { direction: 'input' },
      },
    });
    req.on('edge', (e) => edges.push(e));
  });
  after(async () => {
    await settle(chip?.close());
    await daemon?.stop('SIGKILL');
    tmp.cleanup();
  });

  async function status(): Promise<DeviceStatus> {
    const c = await ControlClient.connect(path);
    try {
      const r = await c.request({ op: 'status' });
      assert.ok(r.ok && r.status);
      return r.status;
    } finally {
      c.close();
    }
  }

  /** Polls the status until line `line` is armed again (the driver re-queued its buffer). */
  async function armed(line: number): Promise<void> {
    const end = Date.now() + 3000;
    while (!(await status()).lines[line].armed) {
      assert.ok(Date.now() < end, `line ${line} was not re-armed`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  test('output PATH LINE prints the driven level; by offset and by name', async () => {
    assert.deepEqual(await runCli(['output', path, '0']), { code: 0, stdout: '1\n', stderr: '' });
    await req.setValue(0, 0);
    assert.deepEqual(await runCli(['output', path, 'led']), { code: 0, stdout: '0\n', stderr: '' });
    await req.setValue(0, 1);
  });

  test('input PATH LINE 0|1 sets what the guest senses; an edge reaches the guest as an interrupt', async () => {
    await armed(1);
    assert.deepEqual(await runCli(['input', path, '3', '1']), { code: 0, stdout: '', stderr: '' });
    assert.equal(await req.getValue(3), 1);
    assert.deepEqual(await runCli(['input', path, 'btn', '1']), { code: 0, stdout: '', stderr: '' });
    await waitFor(() => edges.length === 1, 'the edge event');
    assert.deepEqual([edges[0].type, edges[0].offset, edges[0].seqno], ['rising', 1, 1]);
    assert.equal(await req.getValue(1), 1);
    await armed(1);
  });

  test('status PATH: the exact table', async () => {
    const r = await runCli(['status', path]);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      [
        `device ${path}: 4 lines, front-end connected, features 0x130000001, interrupts on`,
        'front-ends: connections 1, messages 20, refused 0, dropped 0, malformedQueues 0',
        'LINE  NAME  DIRECTION  LEVEL  EDGE    IRQ-STATE  EDGES  DELIVERED  LATCHED  COALESCED  INVALID',
        '0     led   output     high   none    -          0      0          0        0          0',
        '1     btn   input      high   rising  armed      1      1          0        0          0',
        '2     -     none       low    none    -          0      0          0        0          0',
        '3     -     input      high   none    -          0      0          0        0          0',
        '',
      ].join('\n'),
    );
  });

  test('status PATH --json: the same, as JSON', async () => {
    const r = await runCli(['status', path, '--json']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    const line = (n: number, name: string, direction: string, level: string, edge = 'none') => ({
      line: n,
      name,
      direction,
      level,
      edge,
      armed: n === 1,
      latched: false,
      counters: n === 1 ? counters(1, 1) : counters(0, 0),
    });
    assert.deepEqual(JSON.parse(r.stdout), {
      socket: path,
      pid: daemon.child.pid,
      connected: true,
      features: '0x130000001',
      irqNegotiated: true,
      frontend: { connections: 1, messages: 20, refused: 0, dropped: 0, malformedQueues: 0 },
      ngpio: 4,
      lines: [
        line(0, 'led', 'output', 'high'),
        line(1, 'btn', 'input', 'high', 'rising'),
        line(2, '', 'none', 'low'),
        line(3, '', 'input', 'high'),
      ],
    });
    assert.equal(r.stdout, JSON.stringify(JSON.parse(r.stdout), null, 2) + '\n');
  });

  test('output of a line that is not an output: exit 1 and why', async () => {
    const [input, none] = await Promise.all([runCli(['output', path, '3']), runCli(['output', path, '2'])]);
    assert.deepEqual(input, {
      code: 1,
      stdout: '',
      stderr: 'vgpio: line 3 is not an output (direction input)\n',
    });
    assert.deepEqual(none, {
      code: 1,
      stdout: '',
      stderr: 'vgpio: line 2 is not an output (direction none)\n',
    });
  });

  test('a bad LINE: exit 1 and the valid range', async () => {
    const [byName, byOffset] = await Promise.all([
      runCli(['output', path, 'nosuch']),
      runCli(['input', path, '4', '1']),
    ]);
    assert.deepEqual(byName, {
      code: 1,
      stdout: '',
      stderr: 'vgpio: no line "nosuch" (device has 4 lines: 0..3; named: 0 led, 1 btn)\n',
    });
    assert.deepEqual(byOffset, {
      code: 1,
      stdout: '',
      stderr: 'vgpio: no line 4 (device has 4 lines: 0..3; named: 0 led, 1 btn)\n',
    });
  });

  test('input PATH LINE=VALUE ...: several lines in one call, libgpiod value words', async () => {
    assert.deepEqual(await runCli(['input', path, '3=inactive', 'btn=off']), {
      code: 0,
      stdout: '',
      stderr: '',
    });
    assert.deepEqual([await req.getValue(3), await req.getValue(1)], [0, 0]);
    await armed(1);
    const seen = edges.length;
    assert.deepEqual(await runCli(['input', path, 'btn=on', '3=TRUE']), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual([await req.getValue(3), await req.getValue(1)], [1, 1]);
    await waitFor(() => edges.length === seen + 1, 'the rising edge on btn');
    await armed(1);
    for (const [word, level] of [
      ['false', 0],
      ['active', 1],
      ['0', 0],
      ['1', 1],
    ] as const) {
      assert.deepEqual(await runCli(['input', path, '3', word]), { code: 0, stdout: '', stderr: '' });
      assert.equal(await req.getValue(3), level, word);
    }
  });

  test('input with an unknown line among several pairs: exit 1, the line names, nothing changed', async () => {
    assert.equal(await req.getValue(3), 1);
    assert.deepEqual(await runCli(['input', path, '3=0', 'nosuch=1']), {
      code: 1,
      stdout: '',
      stderr: 'vgpio: no line "nosuch" (device has 4 lines: 0..3; named: 0 led, 1 btn)\n',
    });
    assert.equal(await req.getValue(3), 1, 'line 3 was not set');
  });

  test('usage errors: exit 2, the message, then the command’s usage line', async () => {
    const INPUT = 'usage: vgpio input PATH LINE=VALUE [LINE=VALUE...] | vgpio input PATH LINE VALUE\n';
    const usage = (msg: string, line: string) => ({ code: 2, stdout: '', stderr: `vgpio: ${msg}\n${line}` });
    const [value, pair, noLine, extra] = await Promise.all([
      runCli(['input', path, '1', '2']),
      runCli(['input', path, 'btn=1', '3']),
      runCli(['output', path]),
      runCli(['output', path, 'led', 'btn']),
    ]);
    const [noPath, badOption, badCommand, help] = await Promise.all([
      runCli(['input', path]),
      runCli(['input', path, 'btn=1', '--yaml']),
      runCli(['frobnicate']),
      runCli(['--help']),
    ]);
    assert.deepEqual(value, usage('value "2" is not 1/0, active/inactive, on/off or true/false', INPUT));
    assert.deepEqual(pair, usage('"3" is not LINE=VALUE', INPUT));
    assert.deepEqual(noLine, usage('expected 2 arguments, got 1', 'usage: vgpio output PATH LINE\n'));
    assert.deepEqual(extra, usage('unexpected argument "btn"', 'usage: vgpio output PATH LINE\n'));
    assert.deepEqual(noPath, usage('expected 2 or more arguments, got 1', INPUT));
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /^vgpio: Unknown option '--yaml'\..*\nusage: vgpio input PATH /);
    assert.deepEqual(badCommand, usage('unknown command frobnicate', '(see vgpio --help)\n'));
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^vgpio — virtio-gpio with interrupts/);
  });

  test('an unknown PATH: exit 1, no daemon serves it', async () => {
    const nowhere = `${tmp.dir}/nowhere.sock`;
    assert.deepEqual(await runCli(['status', nowhere]), {
      code: 1,
      stdout: '',
      stderr: `vgpio: no vgpio daemon serves ${nowhere} (control socket ${nowhere}.ctl does not exist)\n`,
    });
  });

  test('a dead daemon (SIGKILL, stale sockets left): exit 1, not running; a new daemon takes the path over', async () => {
    const dead = `${tmp.dir}/dead.sock`;
    const d = await startDaemon(['--socket', dead, '--lines', '2']);
    assert.deepEqual(await d.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
    assert.deepEqual([existsSync(dead), existsSync(`${dead}.ctl`)], [true, true]);
    const results = await Promise.all([
      runCli(['status', dead]),
      runCli(['input', dead, '0', '1']),
      runCli(['output', dead, '0']),
    ]);
    for (const r of results)
      assert.deepEqual(r, {
        code: 1,
        stdout: '',
        stderr: `vgpio: cannot reach the vgpio daemon for ${dead}: the daemon is not running (stale socket)\n`,
      });
    const again = await startDaemon(['--socket', dead, '--lines', '2']);
    try {
      const r = await runCli(['status', dead]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.split('\n')[0], `device ${dead}: 2 lines, front-end not connected`);
    } finally {
      assert.deepEqual(await again.stop(), { code: 0, signal: null });
    }
  });
});
