// The control endpoint in process: ControlServer over a GpioDevice + SimulatedLines, spoken to by
// ControlClient and by a raw newline-JSON socket (pipelining, malformed input, oversize lines).
import assert from 'node:assert/strict';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import type { ControlEvent } from '../../src/control/control-protocol.ts';
import { ControlServer } from '../../src/control/control-server.ts';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { Direction, IrqStatus, IrqType, MessageType, Status } from '../../src/protocol/constants.ts';
import { RecordingLogger, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

const { SET_DIRECTION, SET_VALUE, SET_IRQ_TYPE } = MessageType;

/** A raw control connection: write lines, read reply lines. */
class RawControl {
  private buf = '';
  readonly replies: string[] = [];
  closed = false;
  constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => {
      this.buf += s;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.replies.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }
  static async open(path: string): Promise<RawControl> {
    const sock = createConnection(path);
    await new Promise((r) => sock.once('connect', r));
    return new RawControl(sock);
  }
  async replyCount(n: number): Promise<unknown[]> {
    await waitFor(() => this.replies.length >= n, `${n} replies`);
    return this.replies.map((r) => JSON.parse(r));
  }
}

describe('control endpoint', { timeout: 60_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/dev.sock`;
  const lines = new SimulatedLines(4, ['led', 'btn']);
  const gpio = new GpioDevice<number>(lines);
  const returned: Array<[number, number, number]> = [];
  const log = new RecordingLogger();
  let server: ControlServer<number>;
  const clients: ControlClient[] = [];

  before(async () => {
    gpio.setEventSink((token, status, line) => returned.push([token, status, line]));
    gpio.setIrqSupported(true);
    server = await ControlServer.listen(
      `${path}.ctl`,
      {
        device: gpio,
        lines,
        status: () => ({ socket: path, pid: 4242, connected: false, features: null, irqNegotiated: true }),
      },
      log,
    );
  });
  after(async () => {
    clients.forEach((c) => c.close());
    await server.close();
    tmp.cleanup();
  });

  const connect = async () => {
    const c = await ControlClient.connect(path);
    clients.push(c);
    return c;
  };

  test('listens on PATH.ctl, mode 0600', () => {
    assert.equal(lstatSync(`${path}.ctl`).isSocket(), true);
    assert.equal(lstatSync(`${path}.ctl`).mode & 0o777, 0o600);
  });

  test('status: the target fields, ngpio and a snapshot of every line', async () => {
    const c = await connect();
    gpio.handle({ type: SET_VALUE, gpio: 0, value: 1 });
    gpio.handle({ type: SET_DIRECTION, gpio: 0, value: Direction.OUT });
    const r = await c.request({ op: 'status' });
    assert.ok(r.ok && r.status);
    const zero = { edges: 0, delivered: 0, latched: 0, coalesced: 0, invalid: 0 };
    assert.deepEqual(r.status, {
      socket: path,
      pid: 4242,
      connected: false,
      features: null,
      irqNegotiated: true,
      ngpio: 4,
      lines: [
        {
          line: 0,
          name: 'led',
          direction: Direction.OUT,
          value: 1,
          irqType: 0,
          armed: false,
          latched: false,
          counters: zero,
        },
        {
          line: 1,
          name: 'btn',
          direction: Direction.NONE,
          value: 0,
          irqType: 0,
          armed: false,
          latched: false,
          counters: zero,
        },
        {
          line: 2,
          name: '',
          direction: Direction.NONE,
          value: 0,
          irqType: 0,
          armed: false,
          latched: false,
          counters: zero,
        },
        {
          line: 3,
          name: '',
          direction: Direction.NONE,
          value: 0,
          irqType: 0,
          armed: false,
          latched: false,
          counters: zero,
        },
      ],
    });
  });

  test('input by offset, by name and by numeric string; output reads the driven level', async () => {
    const c = await connect();
    assert.deepEqual(await c.request({ op: 'input', line: 3, value: 1 }), { ok: true });
    assert.equal(lines.input(3), 1);
    assert.deepEqual(await c.request({ op: 'input', line: 'btn', value: 1 }), { ok: true });
    assert.equal(lines.input(1), 1);
    assert.deepEqual(await c.request({ op: 'input', line: '2', value: 1 }), { ok: true });
    assert.equal(lines.input(2), 1);
    assert.deepEqual(await c.request({ op: 'output', line: 'led' }), { ok: true, value: 1 });
    assert.deepEqual(await c.request({ op: 'output', line: 0 }), { ok: true, value: 1 });
    assert.deepEqual(
      log.find('input driven').map((e) => e.fields),
      [
        { line: 3, value: 1 },
        { line: 1, value: 1 },
        { line: 2, value: 1 },
      ],
    );
  });

  test('bad requests get ok:false with the reason', async () => {
    const c = await connect();
    assert.deepEqual(await c.request({ op: 'output', line: 1 }), {
      ok: false,
      error: 'line 1 is not an output (direction none)',
    });
    assert.deepEqual(await c.request({ op: 'input', line: 4, value: 0 }), {
      ok: false,
      error: 'no line 4 (device has 4 lines: 0..3)',
    });
    assert.deepEqual(await c.request({ op: 'input', line: '', value: 0 }), {
      ok: false,
      error: 'no line "" (device has 4 lines: 0..3)',
    });
    assert.deepEqual(await c.request({ op: 'input', line: 1.5, value: 0 }), {
      ok: false,
      error: 'no line 1.5 (device has 4 lines: 0..3)',
    });
    assert.deepEqual(await c.request({ op: 'input', line: 0, value: 2 as 0 }), {
      ok: false,
      error: 'value must be 0 or 1, not 2',
    });
    assert.deepEqual(await c.request({ op: 'frob' } as unknown as { op: 'status' }), {
      ok: false,
      error: 'unknown op "frob"',
    });
  });

  test('raw: pipelined requests are answered in order; malformed JSON and blank lines do no harm', async () => {
    const raw = await RawControl.open(`${path}.ctl`);
    raw.sock.write('{"op":"output","line":0}\n\n{nope\n{"op":"output","line":"led"}\nnull\n');
    assert.deepEqual(await raw.replyCount(4), [
      { ok: true, value: 1 },
      { ok: false, error: "Expected property name or '}' in JSON at position 1" },
      { ok: true, value: 1 },
      { ok: false, error: "Cannot read properties of null (reading 'op')" },
    ]);
    raw.sock.destroy();
  });

  test('raw: a line longer than 64 KiB without a newline ends that connection only', async () => {
    const raw = await RawControl.open(`${path}.ctl`);
    raw.sock.write('x'.repeat(70000));
    await waitFor(() => raw.closed, 'the server to drop the connection');
    assert.deepEqual(raw.replies, []);
    const c = await connect();
    assert.deepEqual(await c.request({ op: 'output', line: 0 }), { ok: true, value: 1 });
  });

  test('watch streams line and irq events (VALID on an edge, INVALID on disable)', async () => {
    const watcher = await connect();
    const events: ControlEvent[] = [];
    await watcher.watch((e) => events.push(e));
    const c = await connect();
    assert.deepEqual(gpio.handle({ type: SET_DIRECTION, gpio: 1, value: Direction.IN }), {
      status: Status.OK,
      value: 0,
    });
    await c.request({ op: 'input', line: 1, value: 0 });
    assert.deepEqual(gpio.handle({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.EDGE_RISING }), {
      status: Status.OK,
      value: 0,
    });
    gpio.queueEventBuffer(1, 101);
    events.length = 0;
    await c.request({ op: 'input', line: 'btn', value: 1 });
    await waitFor(() => events.some((e) => e.event === 'irq'), 'the irq event');
    assert.deepEqual(returned.at(-1), [101, IrqStatus.VALID, 1]);
    gpio.queueEventBuffer(1, 102);
    gpio.handle({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.NONE });
    await waitFor(() => events.filter((e) => e.event === 'irq').length === 2, 'the second irq event');
    const shape = events.map((e) => {
      assert.match(e.timeNs, /^\d+$/);
      return e.event === 'irq' ? [e.event, e.line, e.status] : [e.event, e.line];
    });
    assert.deepEqual(
      shape.filter((s) => s[0] === 'irq'),
      [
        ['irq', 1, 'VALID'],
        ['irq', 1, 'INVALID'],
      ],
    );
    assert.ok(shape.every((s) => s[1] === 1));
    assert.deepEqual(returned.at(-1), [102, IrqStatus.INVALID, 1]);
  });

  test('ControlClient: no daemon → a clear error; a stale socket → "not running"', async () => {
    await assert.rejects(ControlClient.connect(`${tmp.dir}/none.sock`), {
      message: `no vgpio daemon serves ${tmp.dir}/none.sock (control socket ${tmp.dir}/none.sock.ctl does not exist)`,
    });
    // A socket file nobody listens on.
    const other = await ControlServer.listen(
      `${tmp.dir}/stale.sock.ctl`,
      {
        device: gpio,
        lines,
        status: () => ({ socket: '', pid: 0, connected: false, features: null, irqNegotiated: false }),
      },
      log,
      0o640,
    );
    assert.equal(lstatSync(`${tmp.dir}/stale.sock.ctl`).mode & 0o777, 0o640);
    await other.close();
    assert.equal(existsSync(`${tmp.dir}/stale.sock.ctl`), false, 'close removes the socket file');
  });

  test('listen refuses a path that exists and is not a socket', async () => {
    writeFileSync(`${tmp.dir}/file.ctl`, '');
    await assert.rejects(
      ControlServer.listen(
        `${tmp.dir}/file.ctl`,
        {
          device: gpio,
          lines,
          status: () => ({ socket: '', pid: 0, connected: false, features: null, irqNegotiated: false }),
        },
        log,
      ),
      { message: `${tmp.dir}/file.ctl exists and is not a socket` },
    );
    assert.equal(existsSync(`${tmp.dir}/file.ctl`), true);
  });
});
