// The control endpoint in process: ControlServer over a GpioDevice + SimulatedLines, spoken to by
// ControlClient and by a raw newline-JSON socket (pipelining, ids, malformed input, oversize lines),
// and the device event stream it forwards to watchers.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/control-client.ts';
import type { ControlEvent } from '../../src/control/control-protocol.ts';
import { ControlServer, type ControlTarget } from '../../src/control/control-server.ts';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { Direction, IrqStatus, IrqType, MessageType, Status } from '../../src/protocol/constants.ts';
import { RecordingLogger, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

const { SET_DIRECTION, SET_VALUE, SET_IRQ_TYPE } = MessageType;
const OK = { status: Status.OK, value: 0 };

/** A raw control connection: write lines, read reply and event lines. */
class RawControl {
  private buf = '';
  readonly lines: string[] = [];
  closed = false;
  constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => {
      this.buf += s;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
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
  async count(n: number): Promise<Array<Record<string, unknown>>> {
    await waitFor(() => this.lines.length >= n, `${n} lines`);
    return this.lines.map((r) => JSON.parse(r) as Record<string, unknown>);
  }
}

/** The interesting part of an event, for deepEqual. */
const brief = (e: ControlEvent): string =>
  [
    e.event,
    e.line ?? '-',
    e.name ?? '',
    e.from && `${e.from}->${e.to}`,
    e.direction,
    e.edge,
    e.held === undefined ? undefined : `held=${e.held}`,
  ]
    .filter((x) => x !== undefined && x !== '')
    .join(' ');

describe('control endpoint', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/dev.sock`;
  const lines = new SimulatedLines(4, ['led', 'btn']);
  const gpio = new GpioDevice<number>(lines);
  const returned: Array<[number, number, number]> = [];
  const log = new RecordingLogger();
  let server: ControlServer<number>;
  const clients: ControlClient[] = [];
  const target = (socket: string): ControlTarget<number> => ({
    device: gpio,
    lines,
    status: () => ({ socket, pid: 4242, connected: false, features: null, irqNegotiated: true }),
  });

  before(async () => {
    gpio.setEventSink((token, status, line) => returned.push([token, status, line]));
    gpio.setIrqSupported(true);
    server = await ControlServer.listen(`${path}.ctl`, target(path), log);
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

  test('listens on PATH.ctl, mode 0600; hello returns protocol version 1', async () => {
    assert.equal(lstatSync(`${path}.ctl`).isSocket(), true);
    assert.equal(lstatSync(`${path}.ctl`).mode & 0o777, 0o600);
    const c = await connect();
    assert.deepEqual(await c.request({ op: 'hello' }), { ok: true, protocol: 1, pid: process.pid });
    assert.equal(await c.hello(), 1);
  });

  test('status: names, not codes; the same counter names as the text columns', async () => {
    const c = await connect();
    gpio.handle({ type: SET_VALUE, gpio: 0, value: 1 });
    gpio.handle({ type: SET_DIRECTION, gpio: 0, value: Direction.OUT });
    gpio.handle({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.EDGE_BOTH });
    const zero = { edges: 0, delivered: 0, latched: 0, coalesced: 0, invalid: 0 };
    const s = await c.status();
    assert.deepEqual(s, {
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
          direction: 'output',
          level: 'high',
          edge: 'none',
          armed: false,
          latched: false,
          counters: zero,
        },
        {
          line: 1,
          name: 'btn',
          direction: 'input',
          level: 'low',
          edge: 'both',
          armed: false,
          latched: false,
          counters: zero,
        },
        {
          line: 2,
          name: '',
          direction: 'none',
          level: 'low',
          edge: 'none',
          armed: false,
          latched: false,
          counters: zero,
        },
        {
          line: 3,
          name: '',
          direction: 'none',
          level: 'low',
          edge: 'none',
          armed: false,
          latched: false,
          counters: zero,
        },
      ],
    });
    gpio.handle({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.NONE });
  });

  test('input by offset, name and numeric string; pulse replies after both edges; output and getOutput', async () => {
    const c = await connect();
    assert.deepEqual(await c.request({ op: 'input', line: 3, value: 1 }), { ok: true });
    assert.equal(lines.input(3), 1);
    await c.setInput('btn', 'high');
    assert.equal(lines.input(1), 1);
    await c.setInput('2', true);
    assert.equal(lines.input(2), 1);
    const seen: number[] = [];
    const onChange = (ch: { line: number; level: 0 | 1 }) => ch.line === 2 && seen.push(ch.level);
    lines.onChange(onChange);
    const t0 = performance.now();
    await c.pulse(2, 20);
    assert.ok(performance.now() - t0 >= 19, 'the reply waits for the pulse');
    assert.deepEqual(seen, [0, 1], 'a pulse is the opposite level, then back');
    assert.deepEqual(await c.request({ op: 'output', line: 'led' }), { ok: true, value: 1 });
    assert.equal(await c.getOutput(0), 1);
    assert.deepEqual(
      log.find('input driven').map((e) => e.fields),
      [
        { line: 3, value: 1 },
        { line: 1, value: 1 },
        { line: 2, value: 1 },
      ],
    );
  });

  test('bad requests: an error code and a message naming the field; logged; the connection goes on', async () => {
    const raw = await RawControl.open(`${path}.ctl`);
    const bad: Array<[string, string, string]> = [
      ['{nope', 'malformed', "not JSON: Expected property name or '}' in JSON at position 1"],
      ['null', 'malformed', 'a request is a JSON object, not null'],
      ['[1]', 'malformed', 'a request is a JSON object, not [1]'],
      ['{}', 'bad-field', '"op" must be a string, not missing'],
      ['{"op":"frob"}', 'unknown-op', 'unknown op "frob"'],
      ['{"op":"input","line":0}', 'bad-field', '"value" must be 0 or 1, not missing'],
      ['{"op":"input","line":0,"value":2}', 'bad-field', '"value" must be 0 or 1, not 2'],
      ['{"op":"input","line":0,"value":"1"}', 'bad-field', '"value" must be 0 or 1, not "1"'],
      [
        '{"op":"input","line":1.5,"value":0}',
        'bad-field',
        '"line" must be a line offset (integer ≥ 0) or a line name, not 1.5',
      ],
      [
        '{"op":"input","line":"","value":0}',
        'bad-field',
        '"line" must be a line offset (integer ≥ 0) or a line name, not ""',
      ],
      [
        '{"op":"input","line":4,"value":0}',
        'no-line',
        'no line 4 (device has 4 lines: 0..3; named: 0 led, 1 btn)',
      ],
      [
        '{"op":"input","line":"nope","value":0}',
        'no-line',
        'no line "nope" (device has 4 lines: 0..3; named: 0 led, 1 btn)',
      ],
      ['{"op":"input","line":0,"value":0,"level":1}', 'bad-field', 'unknown field "level" for op "input"'],
      [
        '{"op":"pulse","line":0,"widthMs":-1}',
        'bad-field',
        '"widthMs" must be a number of ms in 0..60000, not -1',
      ],
      ['{"op":"output","line":"btn"}', 'not-output', 'line 1 is not an output (direction input)'],
      ['{"op":"watch","lines":3}', 'bad-field', '"lines" must be an array of lines, not 3'],
      [
        '{"op":"watch","types":["output","blink"]}',
        'bad-field',
        '"types[1]" must be one of output, input, direction, irq-type, armed, latched, coalesced, delivered, invalid, dropped, connected, disconnected, features, chip-gone, not "blink"',
      ],
      ['{"op":"status","id":{}}', 'bad-field', '"id" must be a number or a string, not {}'],
    ];
    const mark = log.mark;
    raw.sock.write(bad.map((b) => b[0]).join('\n') + '\n\n{"op":"output","line":0,"id":"last"}\n');
    const replies = await raw.count(bad.length + 1);
    assert.deepEqual(replies, [
      ...bad.map(([, code, error]) => ({ ok: false, code, error })),
      { ok: true, value: 1, id: 'last' },
    ]);
    assert.equal(log.find('control request refused', mark).length, bad.length);
    raw.sock.destroy();
  });

  test('raw: pipelined requests are answered in order, ids echoed (a pulse holds back what follows)', async () => {
    const raw = await RawControl.open(`${path}.ctl`);
    raw.sock.write(
      '{"op":"pulse","line":3,"widthMs":15,"id":1}\n{"op":"output","line":0,"id":2}\n{"op":"hello","id":"x"}\n',
    );
    assert.deepEqual(await raw.count(3), [
      { ok: true, id: 1 },
      { ok: true, value: 1, id: 2 },
      { ok: true, protocol: 1, pid: process.pid, id: 'x' },
    ]);
    raw.sock.destroy();
  });

  test('raw: a line longer than 64 KiB without a newline ends that connection only', async () => {
    const raw = await RawControl.open(`${path}.ctl`);
    raw.sock.write('x'.repeat(70000));
    await waitFor(() => raw.closed, 'the server to drop the connection');
    assert.deepEqual(raw.lines, []);
    const c = await connect();
    assert.deepEqual(await c.request({ op: 'output', line: 0 }), { ok: true, value: 1 });
  });

  test('watch: the reply carries the state and clock; then every event, with names, in causal order', async () => {
    assert.equal(gpio.events.active, false, 'nobody watches yet: the device builds no events');
    const raw = await RawControl.open(`${path}.ctl`);
    const before = process.hrtime.bigint();
    raw.sock.write('{"op":"watch"}\n');
    const [reply] = await raw.count(1);
    assert.equal(reply.ok, true);
    assert.ok(BigInt(String(reply.timeNs)) >= before);
    assert.equal((reply.status as { ngpio: number }).ngpio, 4);
    assert.equal(gpio.events.active, true);

    const c = await connect();
    lines.setInput(1, 0);
    assert.deepEqual(gpio.handle({ type: SET_DIRECTION, gpio: 1, value: Direction.IN }), OK);
    assert.deepEqual(gpio.handle({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.EDGE_RISING }), OK);
    gpio.queueEventBuffer(1, 101);
    await c.setInput('btn', 1); // armed: delivered at once
    assert.deepEqual(returned.at(-1), [101, IrqStatus.VALID, 1]);
    await c.setInput('btn', 0);
    await c.setInput('btn', 1); // masked: latched
    await c.setInput('btn', 0);
    await c.setInput('btn', 1); // coalesced
    gpio.queueEventBuffer(1, 102); // the latched edge goes out at once
    gpio.queueEventBuffer(1, 103);
    gpio.queueEventBuffer(1, 104); // a second buffer while one is held
    gpio.handle({ type: SET_IRQ_TYPE, gpio: 1, value: IrqType.NONE }); // the held one back INVALID
    gpio.handle({ type: SET_VALUE, gpio: 0, value: 0 });
    gpio.handle({ type: SET_IRQ_TYPE, gpio: 2, value: IrqType.EDGE_BOTH });
    gpio.queueEventBuffer(2, 105);
    gpio.dropEventBuffers();
    gpio.resetDriverState();
    const want = [
      'input 1 btn high->low',
      'direction 1 btn input',
      'irq-type 1 btn rising',
      'armed 1 btn',
      'input 1 btn low->high',
      'delivered 1 btn',
      'input 1 btn high->low',
      'input 1 btn low->high',
      'latched 1 btn',
      'input 1 btn high->low',
      'input 1 btn low->high',
      'coalesced 1 btn',
      'armed 1 btn',
      'delivered 1 btn',
      'armed 1 btn',
      'invalid 1 btn held=false',
      'irq-type 1 btn none',
      'invalid 1 btn held=true',
      'output 0 led high->low',
      'direction 2 input',
      'irq-type 2 both',
      'armed 2',
      'dropped 2',
      'irq-type 2 none',
    ];
    const got = await raw.count(1 + want.length);
    const events = got.slice(1) as unknown as ControlEvent[];
    assert.deepEqual(events.map(brief), want);
    let last = 0n;
    for (const e of events) {
      assert.match(e.timeNs, /^\d+$/);
      assert.ok(BigInt(e.timeNs) >= last, 'timestamps are monotonic');
      last = BigInt(e.timeNs);
    }
    raw.sock.destroy();
    await waitFor(() => !gpio.events.active, 'the stream to go quiet once the watcher left');
  });

  test('watch filters: lines and types on the server; events() filters in the client', async () => {
    const raw = await RawControl.open(`${path}.ctl`);
    raw.sock.write('{"op":"watch","lines":["btn"],"types":["input"]}\n');
    await raw.count(1);
    const c = await connect();
    const it = c.events({ lines: [3], types: ['input', 'output'] });
    const first = it.next();
    await c.startWatch();
    await c.setInput(3, 0);
    await c.setInput(1, 0);
    await c.setInput(3, 1);
    assert.deepEqual(brief((await first).value as ControlEvent), 'input 3 high->low');
    assert.deepEqual(brief((await it.next()).value as ControlEvent), 'input 3 low->high');
    const got = await raw.count(2);
    assert.deepEqual(
      got.slice(1).map((e) => brief(e as unknown as ControlEvent)),
      ['input 1 btn high->low'],
    );
    await it.return?.();
    raw.sock.destroy();
  });

  test('waitFor: at once if the line is at the level, else on the event; a timeout names the line', async () => {
    const c = await connect();
    await c.setInput(3, 0);
    await c.waitFor(3, 'low', { timeoutMs: 100 });
    setTimeout(() => lines.setInput(3, 1), 20);
    await c.waitFor('3', 1, { timeoutMs: 2000 });
    await assert.rejects(c.waitFor('btn', 'high', { timeoutMs: 50 }), {
      message: 'line "btn" did not go high in 50 ms',
    });
    await assert.rejects(c.waitFor('nope', 'low'), { message: 'no line named "nope"' });
  });

  test('a listener that throws is removed; the device keeps serving', () => {
    const errors: unknown[] = [];
    gpio.events.onListenerError = (e) => errors.push(e);
    gpio.events.subscribe(() => {
      throw new Error('listener bug');
    });
    lines.setInput(2, 0);
    lines.setInput(2, 1);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['listener bug'],
      'called once, then removed',
    );
    assert.equal(lines.input(2), 1);
    gpio.events.onListenerError = null;
  });

  test('ControlClient: events() throws when the daemon goes away, ends on close()', async () => {
    const other = await ControlServer.listen(`${tmp.dir}/gone.sock.ctl`, target(`${tmp.dir}/gone.sock`), log);
    const a = await ControlClient.connect(`${tmp.dir}/gone.sock`);
    const b = await ControlClient.connect(`${tmp.dir}/gone.sock`);
    const ia = a.events();
    const ib = b.events();
    const na = ia.next();
    const nb = ib.next();
    await a.startWatch();
    await b.startWatch();
    b.close();
    assert.deepEqual(await nb, { done: true, value: undefined });
    const closed = new Promise<Error | null>((r) => a.onClose(r));
    await other.close();
    await assert.rejects(na, { message: 'the daemon closed the control connection' });
    assert.equal((await closed)?.message, 'the daemon closed the control connection');
    assert.deepEqual(await a.request({ op: 'status' }), {
      ok: false,
      code: 'failed',
      error: 'the daemon closed the control connection',
    });
  });

  test('ControlClient: no daemon → a clear error; a stale socket → "not running"', async () => {
    await assert.rejects(ControlClient.connect(`${tmp.dir}/none.sock`), {
      message: `no vgpio daemon serves ${tmp.dir}/none.sock (control socket ${tmp.dir}/none.sock.ctl does not exist)`,
    });
    const other = await ControlServer.listen(`${tmp.dir}/stale.sock.ctl`, target(''), log, 0o640);
    assert.equal(lstatSync(`${tmp.dir}/stale.sock.ctl`).mode & 0o777, 0o640);
    await other.close();
    assert.equal(existsSync(`${tmp.dir}/stale.sock.ctl`), false, 'close removes the socket file');
  });

  test('listen refuses a path that exists and is not a socket', async () => {
    writeFileSync(`${tmp.dir}/file.ctl`, '');
    await assert.rejects(ControlServer.listen(`${tmp.dir}/file.ctl`, target(''), log), {
      message: /file\.ctl exists and is not a socket/,
    });
    assert.equal(existsSync(`${tmp.dir}/file.ctl`), true);
  });
});
