// `vgpio dashboard PATH --http ...` and `vgpio serve --http ...` as child processes: the page and
// its WebSocket answer (the browser itself is tested in test/dashboard), the token rules are
// enforced at the command line, and Ctrl-C ends the dashboard.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { CLI, Daemon, ROOT, runCli, startDaemon } from '../daemon/daemon-harness.ts';
import { tempDir, waitFor } from '../transports/vhost-user/harness.ts';

/** The hello message of a dashboard's WebSocket. */
async function hello(url: string): Promise<{ devices: Array<{ label: string; status: { ngpio: number } }> }> {
  const u = new URL(url);
  const ws = new WebSocket(`ws://${u.host}/ws${u.search}`);
  const msg = await new Promise<string>((resolve, reject) => {
    ws.once('message', (d) => resolve(String(d)));
    ws.once('error', reject);
  });
  ws.close();
  return JSON.parse(msg) as { devices: Array<{ label: string; status: { ngpio: number } }> };
}

describe('vgpio dashboard / serve --http', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  const path = `${tmp.dir}/dash.sock`;
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon(['--socket', path, '--lines', '3', '--names', 'led']);
  });
  after(async () => {
    await daemon?.stop('SIGKILL');
    tmp.cleanup();
  });

  test('vgpio dashboard PATH: prints the URL, serves the page and the device; Ctrl-C exits 0', async () => {
    const d = new Daemon(
      spawn(process.execPath, [...CLI, 'dashboard', path, '--http', '127.0.0.1:0'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    await waitFor(() => /^http:\/\/127\.0\.0\.1:\d+\/\n$/.test(d.stdout), 'the URL', 10_000);
    const url = d.stdout.trim();
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>vgpio dashboard<\/title>/);
    const h = await hello(url);
    assert.deepEqual(
      h.devices.map((x) => [x.label, x.status.ngpio]),
      [['dash', 3]],
    );
    d.child.kill('SIGINT');
    assert.deepEqual(await d.exited, { code: 0, signal: null }, d.stderr);
  });

  test('serve --http with a token on all addresses: the token is required and never logged', async () => {
    const p2 = `${tmp.dir}/tok.sock`;
    const s = await startDaemon([
      '--socket',
      p2,
      '--lines',
      '2',
      '--http',
      '0.0.0.0:0',
      '--http-token',
      'tok-12345678',
    ]);
    try {
      const m = await s.waitLog(/dashboard listening url=(\S+) token=required\n/);
      assert.match(m[1], /^http:\/\/0\.0\.0\.0:\d+\/$/, 'the token is not logged');
      assert.doesNotMatch(s.stderr, /tok-12345678/);
      const port = new URL(m[1]).port;
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 401);
      assert.equal((await fetch(`http://127.0.0.1:${port}/?token=tok-12345678`)).status, 200);
      const h = await hello(`http://127.0.0.1:${port}/?token=tok-12345678`);
      assert.equal(h.devices[0].label, 'tok');
    } finally {
      await s.stop('SIGTERM');
    }
  });

  test('a non-loopback --http without a token is a usage error; nothing starts', async () => {
    for (const args of [
      ['dashboard', path, '--http', '0.0.0.0:0'],
      ['serve', '--socket', `${tmp.dir}/never.sock`, '--http', '0.0.0.0:0'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--http 0\.0\.0\.0:0 is not a loopback address: give --http-token TOKEN/);
    }
    const bad = await runCli(['dashboard', path, '--http', 'nonsense']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--http takes HOST:PORT \(e\.g\. 127\.0\.0\.1:8080\), not "nonsense"/);
  });
});
