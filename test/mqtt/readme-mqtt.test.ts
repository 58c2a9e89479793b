// The README's "Lines on an MQTT broker": its board file served as written (only the broker URL and
// the socket path point at this test's), and its mosquitto_sub / mosquitto_pub commands run as
// written (only `-h broker.lab` becomes this test's broker) against a real Mosquitto, with the
// TypeScript driver over vhost-user as vm1's guest.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Chip } from '../../src/driver/chip.ts';
import type { EdgeEvent } from '../../src/driver/edge-event.ts';
import { ROOT, startDaemon, type Daemon } from '../daemon/daemon-harness.ts';
import { openChip, settle, tempDir, waitFor } from '../transports/vhost-user/harness.ts';
import { HAVE_MOSQUITTO, Mosquitto } from './mosquitto.ts';

const skip = HAVE_MOSQUITTO
  ? false
  : 'mosquitto is not installed (apt-get install mosquitto mosquitto-clients)';

const HEADING = '### Lines on an MQTT broker';
function section(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(HEADING);
  assert.ok(start >= 0, `README.md has no "${HEADING}"`);
  const end = readme.indexOf('\n### ', start + HEADING.length);
  return readme.slice(start, end < 0 ? undefined : end);
}
const block = (lang: string): string => {
  const m = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'm').exec(section());
  assert.ok(m, `no \`\`\`${lang} block under "${HEADING}"`);
  return m[1];
};

/** Runs a README command line through sh until `done(stdout)` holds or it exits. */
function run(cmd: string, done: (out: string) => boolean = () => false, ms = 5000) {
  return new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    // Its own process group: stopping it stops the command sh started, too.
    const c = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stop = () => {
      try {
        process.kill(-c.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    };
    let out = '';
    let err = '';
    const t = setTimeout(() => {
      stop();
      reject(new Error(`${cmd}: no result within ${ms} ms; stdout:\n${out}\nstderr:\n${err}`));
    }, ms);
    c.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (done(out)) {
        clearTimeout(t);
        stop();
        resolve({ code: 0, out });
      }
    });
    c.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    // 'close', not 'exit': the process can exit before its last output has been read.
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out: out + err });
    });
  });
}

describe('README: lines on an MQTT broker', { skip, timeout: 120_000 }, () => {
  const tmp = tempDir();
  let broker: Mosquitto;
  let daemon: Daemon;
  let chip: Chip;
  const edges: EdgeEvent[] = [];
  let commands: string[];

  before(async () => {
    broker = await Mosquitto.start(tmp.dir);
    const board = JSON.parse(block('json')) as {
      devices: Array<{ socket: string }>;
      mqtt: { url: string };
    };
    board.devices[0].socket = join(tmp.dir, 'vm1.sock');
    board.mqtt.url = broker.url;
    writeFileSync(join(tmp.dir, 'board.json'), JSON.stringify(board));
    daemon = await startDaemon(['--config', join(tmp.dir, 'board.json')]);
    await daemon.waitLog(/mqtt connected/);
    chip = await openChip(board.devices[0].socket);
    const req = await chip.requestLines({
      consumer: 'vm1',
      lines: { 0: { direction: 'output', outputValue: 1 }, 1: { direction: 'input', edge: 'rising' } },
    });
    req.on('edge', (e) => edges.push(e));
    commands = block('sh')
      .split('\n')
      .filter((l) => l.startsWith('mosquitto_'))
      .map((l) => {
        assert.match(l, / -h broker\.lab /);
        return l.replace(' -h broker.lab ', ` -h 127.0.0.1 -p ${broker.port} `);
      });
    assert.equal(commands.length, 3, 'the README shows three commands');
  });
  after(async () => {
    await settle(chip?.close());
    await daemon?.stop('SIGKILL');
    await broker?.stop();
    tmp.cleanup();
  });

  it('mosquitto_sub on the prefix shows status, state and config with their topics', async () => {
    const want = [
      'vgpio/host1/status online',
      'vgpio/host1/vm1/0/state 1',
      'vgpio/host1/vm1/1/config {"direction":"input","edge":"rising","name":"button"}',
    ];
    const r = await run(commands[0], (out) => want.every((w) => out.split('\n').includes(w)));
    assert.equal(r.code, 0);
  });

  it("mosquitto_sub -C 1 prints the led's level once", async () => {
    const r = await run(commands[1]);
    assert.deepEqual(r, { code: 0, out: '1\n' });
  });

  it("mosquitto_pub on the button's set reaches the guest as a rising edge", async () => {
    const r = await run(commands[2]);
    assert.equal(r.code, 0, r.out);
    await waitFor(() => edges.length === 1, 'the rising edge');
    assert.equal(edges[0].offset, 1);
    assert.equal(edges[0].type, 'rising');
  });
});
