// The dashboard in a real browser: Debian's chromium driven by playwright-core (never a downloaded
// browser), against a ServedDevice whose guest is the project's own front-end (VhostUserFrontend +
// Chip). The page lists the lines; a click drives an input (checked through the control client);
// the guest's output shows; the waveform canvas changes; the VCD download holds the transitions;
// with a token, requests without it are refused; a foreign Origin cannot open the WebSocket.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { get } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { Board } from '../../src/board/board.ts';
import { ControlClient } from '../../src/control/control-client.ts';
import { ServedDevice } from '../../src/daemon/served-device.ts';
import { DashboardServer } from '../../src/dashboard/dashboard-server.ts';
import { LocalDeviceLink } from '../../src/dashboard/local-device-link.ts';
import type { Chip } from '../../src/driver/chip.ts';
import type { LineRequest } from '../../src/driver/line-request.ts';
import { openChip, RecordingLogger, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : 'chromium is not installed (apt-get install chromium)';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

describe('dashboard in chromium', { skip, timeout: 120_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/board.sock`;
  const log = new RecordingLogger();
  let served: ServedDevice;
  let chip: Chip;
  let req: LineRequest;
  let host: ControlClient;
  let dashClient: ControlClient;
  let dash: DashboardServer;
  let browser: BrowserContext;
  let page: Page;

  const row = (line: number) => page.locator(`tr[data-device="0"][data-line="${line}"]`);
  const cell = async (line: number, c: string) => (await row(line).locator(`td.${c}`).textContent()) ?? '';
  const canvas = () =>
    page.locator('canvas[data-device="0"]').evaluate((c: HTMLCanvasElement) => c.toDataURL());

  before(async () => {
    served = await ServedDevice.start({ socket: path, lines: 4, names: ['led', 'button', 'reset'] }, log);
    chip = await openChip(path);
    req = await chip.requestLines({
      consumer: 'dashboard-test',
      lines: { 0: { direction: 'output', outputValue: 0 }, 1: { direction: 'input', edge: 'both' } },
    });
    host = await ControlClient.connect(path);
    dashClient = await ControlClient.connect(path);
    // The page's device is this process's own (as with `serve --http`); the guarded dashboard
    // below reaches it through its control socket (as `vgpio dashboard` does).
    const control = served.controlServer;
    assert.ok(control);
    dash = await DashboardServer.start({
      host: '127.0.0.1',
      port: 0,
      log,
      devices: [{ label: 'board', client: new LocalDeviceLink(control) }],
    });
    browser = await chromium.launchPersistentContext(`${tmp.dir}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1200, height: 640 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(dash.url);
    await page.locator('#conn.live').waitFor({ timeout: 10_000 });
  });
  after(async () => {
    await settle(browser?.close());
    await settle(dash?.close());
    host?.close();
    dashClient?.close();
    await settle(chip?.close());
    await settle(served?.close());
    tmp.cleanup();
  });

  test('the page lists the served device and its lines with names and state', async () => {
    await row(3).waitFor();
    assert.equal(await row(0).locator('td.name').textContent(), 'led');
    assert.equal(await cell(1, 'name'), 'button');
    assert.equal(await cell(2, 'name'), 'reset');
    assert.equal(await cell(3, 'name'), '-');
    assert.equal(await cell(0, 'direction'), 'output');
    assert.equal(await cell(1, 'direction'), 'input');
    assert.equal(await cell(1, 'edge'), 'both');
    await waitFor(() => served.gpio.snapshot()[1].armed, 'button armed');
    await page.waitForFunction(
      () => document.querySelector('tr[data-line="1"] td.state')?.textContent === 'armed ',
    );
    assert.match(
      (await page.locator('section.device h2').textContent()) ?? '',
      /board — .*board\.sock, 4 lines, front-end connected, features 0x[0-9a-f]+, interrupts on/,
    );
  });

  test('clicking an input drives the device (seen through the control client); the guest gets the edge', async () => {
    const edges: string[] = [];
    req.on('edge', (e) => edges.push(e.type));
    await row(1).locator('button.set1').click();
    await host.waitFor('button', 'high', { timeoutMs: 2000 });
    assert.equal((await host.status()).lines[1].level, 'high');
    await waitFor(() => edges.length === 1, 'the guest edge');
    await page.waitForFunction(
      () => document.querySelector('tr[data-line="1"] td.level')?.textContent === 'high',
    );
    await page.waitForFunction(
      () => document.querySelector('tr[data-line="1"] td.delivered')?.textContent === '1',
    );
    await row(1).locator('button.pulse').click(); // 50 ms low, then high again
    await waitFor(() => edges.length === 3, 'the pulse edges');
    assert.deepEqual(edges, ['rising', 'falling', 'rising']);
    assert.equal(
      await row(0).locator('button.set1').isDisabled(),
      true,
      'an output cannot be driven from the page',
    );
  });

  test('an output the guest drives shows on the page within 100 ms; the waveform canvas changes', async () => {
    const before = await canvas();
    const latencies: number[] = [];
    for (const v of [1, 0, 1, 0, 1] as const) {
      const t0 = performance.now();
      await req.setValue(0, v);
      const want = v ? 'high' : 'low';
      await page.waitForFunction(
        (w) => document.querySelector('tr[data-line="0"] td.level')?.textContent === w,
        want,
        { polling: 'raf' },
      );
      latencies.push(performance.now() - t0);
    }
    latencies.sort((a, b) => a - b);
    console.log(`dashboard: guest output → page, ms: ${latencies.map((l) => l.toFixed(1)).join(' ')}`);
    assert.ok(latencies[2] < 100, `median ${latencies[2].toFixed(1)} ms`);
    await page.waitForTimeout(100);
    assert.notEqual(await canvas(), before, 'the waveform shows the new levels');
    await page.screenshot({ path: `${tmp.dir}/dashboard.png` });
    assert.ok(existsSync(`${tmp.dir}/dashboard.png`));
    if (process.env.VGPIO_DASHBOARD_SCREENSHOT)
      copyFileSync(`${tmp.dir}/dashboard.png`, process.env.VGPIO_DASHBOARD_SCREENSHOT);
  });

  test('the page downloads the last seconds as VCD with the transitions', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a.vcd').click()]);
    const file = `${tmp.dir}/download.vcd`;
    await download.saveAs(file);
    const text = (await import('node:fs')).readFileSync(file, 'utf8');
    assert.match(text, /\$timescale 1 ns \$end/);
    assert.match(text, /\$var wire 1 (\S+) led \$end/);
    const led = /\$var wire 1 (\S+) led \$end/.exec(text)?.[1] ?? '';
    const changes = text
      .split('$end\n')
      .at(-1)
      ?.split('\n')
      .filter((l) => l === `1${led}` || l === `0${led}`);
    assert.deepEqual(changes?.slice(-5), [`1${led}`, `0${led}`, `1${led}`, `0${led}`, `1${led}`]);
  });

  test('page commands are checked: a bad line gets an error back, the daemon goes on', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${dash.port}/ws`);
    const msgs: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => msgs.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ id: 1, type: 'input', device: 0, line: 9, value: 1 }));
    ws.send(JSON.stringify({ id: 2, type: 'input', device: 0, line: 1, value: 7 }));
    ws.send(JSON.stringify({ id: 3, type: 'blink', device: 0, line: 1 }));
    ws.send('not json');
    await waitFor(() => msgs.filter((m) => m.type === 'result').length === 4, '4 results');
    assert.deepEqual(
      msgs.filter((m) => m.type === 'result'),
      [
        {
          type: 'result',
          id: 1,
          ok: false,
          error: 'no line 9 (device has 4 lines: 0..3; named: 0 led, 1 button, 2 reset)',
        },
        { type: 'result', id: 2, ok: false, error: '"value" must be 0 or 1, not 7' },
        {
          type: 'result',
          id: 3,
          ok: false,
          error: '"type" must be "input", "pulse", "button", "clock" or "encoder", not "blink"',
        },
        { type: 'result', id: null, ok: false, error: 'a command is a JSON object' },
      ],
    );
    ws.close();
    assert.equal((await host.status()).connected, true);
  });

  test('with a token: the page, the socket and downloads need it; a foreign Origin is refused; no CORS', async () => {
    const token = 'secret-token-123';
    const guarded = await DashboardServer.start({
      host: '127.0.0.1',
      port: 0,
      token,
      log,
      devices: [{ label: 'board', client: dashClient }],
    });
    try {
      const base = `http://127.0.0.1:${guarded.port}`;
      for (const p of ['/', '/vcd?device=0&seconds=5', '/ws'])
        assert.equal((await fetch(base + p)).status, 401, p);
      assert.equal((await fetch(`${base}/?token=wrong-token-000`)).status, 401);
      const ok = await fetch(`${base}/?token=${token}`);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), null);
      assert.equal(
        (await fetch(`${base}/vcd?device=0&seconds=5`, { headers: { Authorization: `Bearer ${token}` } }))
          .status,
        200,
      );

      const open = (url: string, origin?: string) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url, origin ? { origin } : {});
          ws.on('open', () => {
            ws.close();
            resolve('open');
          });
          ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
          ws.on('error', () => resolve('error'));
        });
      assert.equal(await open(`ws://127.0.0.1:${guarded.port}/ws`), '401');
      assert.equal(
        await open(`ws://127.0.0.1:${guarded.port}/ws?token=${token}`, 'http://evil.example'),
        '403',
      );
      assert.equal(await open(`ws://127.0.0.1:${guarded.port}/ws?token=${token}`, base), 'open');

      // A command through this dashboard's ControlClient reaches the device.
      const ws = new WebSocket(`ws://127.0.0.1:${guarded.port}/ws?token=${token}`);
      const results: string[] = [];
      ws.on('message', (d) => {
        const m = JSON.parse(String(d)) as { type: string; ok?: boolean };
        if (m.type === 'result') results.push(String(m.ok));
      });
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ id: 1, type: 'input', device: 0, line: 2, value: 1 }));
      await host.waitFor('reset', 'high', { timeoutMs: 2000 });
      await waitFor(() => results.length === 1, 'the result');
      assert.deepEqual(results, ['true']);
      ws.close();

      // The browser: without the token the page is refused; with it, it goes live.
      const p2 = await browser.newPage();
      const refused = await p2.goto(base + '/');
      assert.equal(refused?.status(), 401);
      await p2.goto(guarded.url);
      await p2.locator('#conn.live').waitFor({ timeout: 10_000 });
      await p2.close();
    } finally {
      await guarded.close();
    }
    await assert.rejects(
      DashboardServer.start({ host: '0.0.0.0', port: 0, log, devices: [] }),
      /not a loopback address: give --http-token/,
    );
  });

  test('a loopback dashboard without a token refuses a Host that is not loopback (DNS rebinding)', async () => {
    const status = (hostHeader: string) =>
      new Promise<number | undefined>((resolve, reject) =>
        get({ host: '127.0.0.1', port: dash.port, path: '/', headers: { Host: hostHeader } }, (res) => {
          res.resume();
          resolve(res.statusCode);
        }).on('error', reject),
      );
    assert.equal(await status('attacker.example'), 403);
    assert.equal(await status(`attacker.example:${dash.port}`), 403);
    assert.equal(await status(`localhost:${dash.port}`), 200);
  });
});

describe("a board's peripherals on the dashboard in chromium", { skip, timeout: 120_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/periph.sock`;
  const log = new RecordingLogger();
  let board: Board;
  let served: ServedDevice;
  let ctl: ControlClient;
  let dash: DashboardServer;
  let browser: BrowserContext;
  let page: Page;

  const row = (line: number) => page.locator(`tr[data-device="0"][data-line="${line}"]`);
  const shows = (line: number, column: string, text: string) =>
    page.waitForFunction(
      ([l, c, t]) => document.querySelector(`tr[data-line="${l}"] td.${c}`)?.textContent === t,
      [line, column, text] as const,
      { timeout: 10_000 },
    );

  before(async () => {
    board = Board.create({
      devices: [{ name: 'd', lines: 4, names: ['clk', 'knob-a', 'knob-b', 'btn'], pull: { btn: 'up' } }],
      peripherals: [
        { type: 'clock', name: 'tick', line: 'd:clk', periodMs: 10, running: false },
        { type: 'encoder', name: 'knob', a: 'd:knob-a', b: 'd:knob-b' },
        { type: 'button', name: 'user', line: 'd:btn' },
      ],
    });
    served = await ServedDevice.start({ socket: path, lines: 4, simulated: board.lines('d') }, log);
    await board.start();
    ctl = await ControlClient.connect(path);
    const control = served.controlServer;
    assert.ok(control);
    dash = await DashboardServer.start({
      host: '127.0.0.1',
      port: 0,
      log,
      devices: [{ label: 'board', client: new LocalDeviceLink(control) }],
    });
    browser = await chromium.launchPersistentContext(`${tmp.dir}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1400, height: 640 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(dash.url);
    await page.locator('#conn.live').waitFor({ timeout: 10_000 });
  });
  after(async () => {
    await settle(browser?.close());
    await settle(dash?.close());
    ctl?.close();
    await settle(board?.close());
    await settle(served?.close());
    tmp.cleanup();
  });

  test('each peripheral line shows what sits there; only its own controls are drawn', async () => {
    await row(3).waitFor();
    assert.equal(await row(0).locator('td.peripheral').textContent(), 'clock tick: stopped, 10 ms');
    assert.equal(await row(1).locator('td.peripheral').textContent(), 'encoder knob (a): 0');
    assert.equal(await row(2).locator('td.peripheral').textContent(), 'encoder knob (b): 0');
    assert.equal(await row(3).locator('td.peripheral').textContent(), 'button user: released');
    assert.equal(await row(0).locator('button.clock-start').count(), 1);
    assert.equal(await row(1).locator('button.clock-start').count(), 0);
    assert.equal(await row(0).locator('button.encoder-up').count(), 0);
    assert.equal(await row(3).locator('button.button-press').count(), 1);
  });

  test('start and stop the clock from the page: the line ticks, then rests low', async () => {
    await row(0).locator('button.clock-start').click();
    await shows(0, 'peripheral', 'clock tick: running, 10 ms');
    assert.equal((await ctl.clock('clk')).running, true);
    await ctl.waitFor('clk', 'low', { timeoutMs: 10_000 });
    await ctl.waitFor('clk', 'high', { timeoutMs: 10_000 });
    await row(0).locator('button.clock-stop').click();
    await shows(0, 'peripheral', 'clock tick: stopped, 10 ms');
    assert.equal((await ctl.clock('clk')).running, false);
    await shows(0, 'level', 'low');
  });

  test('turn the encoder from the page: + twice, then a typed position; both lines follow', async () => {
    await row(1).locator('button.encoder-up').click();
    await row(1).locator('button.encoder-up').click();
    await shows(1, 'peripheral', 'encoder knob (a): 2');
    await shows(2, 'peripheral', 'encoder knob (b): 2');
    assert.equal((await ctl.encoder('knob-b')).position, 2);
    // Either line addresses it: the b line's controls turn the same encoder.
    await row(2).locator('input.encoder-position').fill('-3');
    await row(2).locator('button.encoder-set').click();
    await shows(1, 'peripheral', 'encoder knob (a): -3');
    const s = await ctl.encoder('knob-a');
    assert.deepEqual([s.position, s.a, s.b], [-3, 1, 0]);
    await shows(1, 'level', 'high');
    await shows(2, 'level', 'low');
    await row(1).locator('button.encoder-down').click();
    await shows(1, 'peripheral', 'encoder knob (a): -4');
    // Not an integer: the page says so and sends nothing.
    await row(1).locator('input.encoder-position').fill('1.5');
    await row(1).locator('button.encoder-set').click();
    await page.waitForFunction(
      () => document.getElementById('error')?.textContent === 'the encoder position is an integer',
    );
    assert.equal((await ctl.encoder('knob-a')).position, -4);
  });

  test('press and release the board button from the page', async () => {
    await row(3).locator('button.button-press').click();
    await shows(3, 'peripheral', 'button user: pressed');
    await shows(3, 'level', 'low');
    await row(3).locator('button.button-release').click();
    await shows(3, 'peripheral', 'button user: released');
    await shows(3, 'level', 'high');
  });

  test('peripheral page commands are checked field by field', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${dash.port}/ws`);
    const msgs: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => msgs.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ id: 1, type: 'clock', device: 0, line: 0, action: 'pause' }));
    ws.send(JSON.stringify({ id: 2, type: 'encoder', device: 0, line: 1, position: 'far' }));
    ws.send(JSON.stringify({ id: 3, type: 'clock', device: 0, line: 1, action: 'start' }));
    ws.send(JSON.stringify({ id: 4, type: 'encoder', device: 0, line: 3, position: 1 }));
    await waitFor(() => msgs.filter((m) => m.type === 'result').length === 4, '4 results');
    assert.deepEqual(
      msgs.filter((m) => m.type === 'result'),
      [
        { type: 'result', id: 1, ok: false, error: '"action" must be start or stop, not "pause"' },
        {
          type: 'result',
          id: 2,
          ok: false,
          error: '"position" must be an integer -2147483648..2147483647, not "far"',
        },
        {
          type: 'result',
          id: 3,
          ok: false,
          error: 'clock: line 1 has no clock (a board file\'s "clock" peripheral; it has the encoder "knob")',
        },
        {
          type: 'result',
          id: 4,
          ok: false,
          error:
            'encoder: line 3 has no encoder (a board file\'s "encoder" peripheral; it has the button "user")',
        },
      ],
    );
    ws.close();
  });
});
