// mqtts:// with a TLS client certificate (the section's ca, cert and key, relative to the board file)
// against a real Mosquitto that requires one; certificates made here with openssl.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { tempDir } from '../transports/vhost-user/harness.ts';
import { HAVE_MOSQUITTO, Mosquitto } from './mosquitto.ts';
import { Recorder } from './mqtt-recorder.ts';

const HAVE_OPENSSL = spawnSync('openssl', ['version']).error === undefined;
const skip = !HAVE_MOSQUITTO
  ? 'mosquitto is not installed'
  : !HAVE_OPENSSL
    ? 'openssl is not installed'
    : false;

/** A CA, and a certificate it signs for `cn` (with an IP SAN for the server). */
function makeCerts(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=vgpio test CA',
  );
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const [name, cn] of [
    ['server', '127.0.0.1'],
    ['client', 'host1'],
  ]) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      ...(name === 'server' ? ['-extfile', 'san.ext'] : []),
    );
  }
}

describe('MQTT bridge over TLS with a client certificate', { skip, timeout: 120_000 }, () => {
  const tmp = tempDir();
  let broker: Mosquitto;
  const daemons: Daemon[] = [];

  const serve = async (name: string, tls: object) => {
    const file = join(tmp.dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        devices: [{ socket: join(tmp.dir, `${name}.sock`), name, lines: 2 }],
        mqtt: { url: broker.url, prefix: `lab/${name}`, reconnect: { minMs: 200, maxMs: 400 }, ...tls },
      }),
    );
    const d = await startDaemon(['--config', file]);
    daemons.push(d);
    return d;
  };

  before(async () => {
    makeCerts(tmp.dir);
    const f = (n: string) => join(tmp.dir, n);
    broker = await Mosquitto.start(tmp.dir, {
      tls: { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') },
    });
    assert.match(broker.url, /^mqtts:/);
  });
  after(async () => {
    for (const d of daemons) await d.stop('SIGKILL');
    await broker?.stop();
    tmp.cleanup();
  });

  it('connects with the CA and a client certificate, and publishes', async () => {
    const d = await serve('tls', { ca: 'ca.pem', cert: 'client.pem', key: 'client.key' });
    await d.waitLog(/mqtt connected .*url=mqtts:/);
    const rec = await Recorder.connect(broker.url, ['lab/tls/#'], {
      ca: readFileSync(join(tmp.dir, 'ca.pem')),
      cert: readFileSync(join(tmp.dir, 'client.pem')),
      key: readFileSync(join(tmp.dir, 'client.key')),
    });
    try {
      await rec.value('lab/tls/status', 'online');
      await rec.value('lab/tls/tls/1/state', '0');
    } finally {
      await rec.close();
    }
  });

  it('without a client certificate the broker refuses: logged once, retried, never connected', async () => {
    const d = await serve('nocert', { ca: 'ca.pem' });
    await d.waitLog(/WARN +mqtt connection error/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.doesNotMatch(d.stderr, /mqtt connected/);
    assert.equal((d.stderr.match(/WARN +mqtt connection error/g) ?? []).length, 1, d.stderr);
  });

  it('a server certificate from another CA is refused', async () => {
    const d = await serve('untrusted', { cert: 'client.pem', key: 'client.key' }); // the system CAs only
    await d.waitLog(/WARN +mqtt connection error.*(self[- ]signed|unable to verify|certificate)/i);
    assert.doesNotMatch(d.stderr, /mqtt connected/);
  });
});
