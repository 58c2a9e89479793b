// A board's button on the dashboard: the page's status marks the line (and what drives it), the page
// draws press/release/click for it, and a page command through the WebSocket presses it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { Board } from '../../src/board/board.ts';
import { ServedDevice } from '../../src/daemon/served-device.ts';
import { DashboardServer } from '../../src/dashboard/dashboard-server.ts';
import { LocalDeviceLink } from '../../src/dashboard/local-device-link.ts';
import { RecordingLogger, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

const tmp = tempDir();
const log = new RecordingLogger();
let board: Board;
let served: ServedDevice;
let dash: DashboardServer;

before(async () => {
  board = Board.create({
    devices: [{ name: 'd', lines: 3, names: ['led', 'btn', 'in'], pull: { btn: 'up' } }],
    wires: [{ from: 'd:led', to: 'd:in' }],
    peripherals: [{ type: 'button', name: 'user', line: 'd:btn' }],
  });
  served = await ServedDevice.start(
    { socket: `${tmp.dir}/d.sock`, lines: 3, simulated: board.lines('d') },
    log,
  );
  await board.start();
  const control = served.controlServer;
  assert.ok(control);
  dash = await DashboardServer.start({
    host: '127.0.0.1',
    port: 0,
    log,
    devices: [{ label: 'd', client: new LocalDeviceLink(control) }],
  });
});

after(async () => {
  await dash.close();
  await board.close();
  await served.close();
  tmp.cleanup?.();
});

test('the button line is marked, drawn with press/release/click, and pressed from the page socket', async () => {
  const page = await (await fetch(dash.url)).text();
  assert.match(page, /'button-' \+ action/);
  const ws = new WebSocket(`ws://127.0.0.1:${dash.port}/ws`);
  const msgs: Array<Record<string, unknown>> = [];
  ws.on('message', (d) => msgs.push(JSON.parse(String(d)) as Record<string, unknown>));
  await new Promise((r) => ws.once('open', r));
  await waitFor(() => msgs.length > 0, 'the first message');
  const first = msgs[0] as { devices: Array<{ status: { lines: Array<Record<string, unknown>> } }> };
  const lines = first.devices[0].status.lines;
  assert.equal(lines[1].button, true);
  assert.equal(lines[1].drivenBy, 'peripheral user');
  assert.equal(lines[2].drivenBy, 'wires[0] from d:led');
  assert.equal(lines[0].button, undefined);

  ws.send(JSON.stringify({ id: 1, type: 'button', device: 0, line: 1, action: 'press' }));
  await waitFor(() => msgs.some((m) => m.type === 'result' && m.id === 1), 'the press result');
  assert.equal(board.lines('d').input(1), 0, 'pressed: pulled-up line reads 0');
  ws.send(JSON.stringify({ id: 2, type: 'button', device: 0, line: 1, action: 'click' }));
  ws.send(JSON.stringify({ id: 3, type: 'button', device: 0, line: 0, action: 'press' }));
  ws.send(JSON.stringify({ id: 4, type: 'button', device: 0, line: 1, action: 'wiggle' }));
  await waitFor(() => msgs.filter((m) => m.type === 'result').length === 4, '4 results');
  assert.deepEqual(msgs.filter((m) => m.type === 'result').slice(1), [
    { type: 'result', id: 2, ok: true },
    {
      type: 'result',
      id: 3,
      ok: false,
      error: 'press: line 0 has no button (a board file\'s "button" peripheral)',
    },
    { type: 'result', id: 4, ok: false, error: '"action" must be press, release or click, not "wiggle"' },
  ]);
  assert.equal(board.lines('d').input(1), 1, 'clicked: released again');
  ws.close();
});
