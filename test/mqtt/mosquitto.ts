// A real Mosquitto broker for the tests, on a loopback port of its own: plain, or with a password
// file and an ACL; persistent (its database in the temp dir), so a restart keeps sessions and
// queued QoS 1 messages. Debian's mosquitto and mosquitto-clients (.ci/run installs them).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const HAVE_MOSQUITTO = spawnSync('mosquitto', ['-h']).error === undefined;

/** A free loopback TCP port (bound and released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface BrokerOptions {
  /** user → password; with `acl`, the broker refuses anonymous clients. */
  users?: Record<string, string>;
  /** ACL file text (mosquitto.conf(5) acl_file). */
  acl?: string;
  /** A TLS listener (mqtts://): PEM file paths; clients must present a certificate the CA signed. */
  tls?: { ca: string; cert: string; key: string };
}

export class Mosquitto {
  private child: ChildProcess | null = null;
  log = '';
  readonly url: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly conf: string,
    tls: boolean,
  ) {
    this.url = `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
  }

  static async start(dir: string, opts: BrokerOptions = {}): Promise<Mosquitto> {
    const port = await freePort();
    const lines = [
      `listener ${port} 127.0.0.1`,
      ...(opts.tls
        ? [
            `cafile ${opts.tls.ca}`,
            `certfile ${opts.tls.cert}`,
            `keyfile ${opts.tls.key}`,
            'require_certificate true',
          ]
        : []),
      // As root, mosquitto would drop to user mosquitto, which cannot read the test's temp dir.
      `user ${userInfo().username}`,
      'set_tcp_nodelay true',
      'persistence true',
      `persistence_location ${dir}/`,
      'autosave_interval 1',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type subscribe',
    ];
    if (opts.users) {
      const pw = join(dir, 'passwd');
      writeFileSync(pw, '');
      for (const [u, p] of Object.entries(opts.users)) {
        const r = spawnSync('mosquitto_passwd', ['-b', pw, u, p], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr}`);
      }
      lines.push('allow_anonymous false', `password_file ${pw}`);
    } else lines.push('allow_anonymous true');
    if (opts.acl) {
      writeFileSync(join(dir, 'acl'), opts.acl);
      lines.push(`acl_file ${join(dir, 'acl')}`);
    }
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, lines.join('\n') + '\n');
    const b = new Mosquitto(dir, port, conf, opts.tls !== undefined);
    await b.run();
    return b;
  }

  /** (Re)starts the broker process on the same port and database. */
  async run(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => (this.log += s));
    this.child = child;
    const end = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited ${child.exitCode}:\n${this.log}`);
      if (await canConnect(this.port)) return;
      if (Date.now() > end) throw new Error(`mosquitto not listening on ${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the broker (SIGTERM: it saves its database, as a service manager's stop does). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  }
}

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
