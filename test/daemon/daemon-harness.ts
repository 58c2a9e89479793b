// Runs the CLI from source (src/cli/main.ts through tsx, so no build is needed) as a child process: the daemon (`serve`, waited for until it logs "serving")
// and the one-shot line commands (`input`, `output`, `status`), with their output captured.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/control/control-client.ts';
import type { DeviceStatus } from '../../src/control/control-protocol.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** `node ...CLI args` runs the CLI from src/ (bin/vgpio.js runs the compiled dist/; test/consumer tests that). */
export const CLI = ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Daemon {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  private waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => {
      this.stdout += s;
      this.poke();
    });
    child.stderr?.on('data', (s: string) => {
      this.stderr += s;
      this.poke();
    });
    this.exited = new Promise((resolve) =>
      // 'close', not 'exit': by then every byte the process wrote has been read.
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.poke();
        resolve(this.exit);
      }),
    );
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until stderr matches `re` (fails if the process exits first, or after `ms`). */
  async waitLog(re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.stderr.match(re);
      if (m) return m;
      if (this.exit)
        assert.fail(`daemon exited (${JSON.stringify(this.exit)}) before logging ${re}:\n${this.stderr}`);
      const left = end - Date.now();
      if (left <= 0) assert.fail(`daemon did not log ${re} within ${ms} ms:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends `signal` and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 10000): Promise<Exit> {
    if (!this.exit) this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}

/**
 * Spawns `vgpio serve ARGS`; `extraFds` become the child's fds 3, 4, ... Waits for "serving" unless
 * `wait` is false.
 */
export async function startDaemon(
  args: string[],
  opts: { extraFds?: number[]; wait?: boolean } = {},
): Promise<Daemon> {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...(opts.extraFds ?? [])];
  const d = new Daemon(spawn(process.execPath, [...CLI, 'serve', ...args], { cwd: ROOT, stdio }));
  if (opts.wait !== false) await d.waitLog(/(?: INFO {2}serving |"msg":"serving")/);
  return d;
}

/**
 * Runs a one-shot CLI command to completion (killed after `ms`: generous, since each run starts tsx
 * and the test machine may be busy).
 */
export async function runCli(
  args: string[],
  ms = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const d = new Daemon(
    spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const t = setTimeout(() => d.child.kill('SIGKILL'), ms);
  try {
    const { code } = await d.exited;
    // 'exit' can come before the pipes are drained.
    await Promise.all(
      [d.child.stdout, d.child.stderr].map(
        (s) => s && new Promise((r) => (s.readableEnded ? r(null) : s.once('end', r))),
      ),
    );
    return { code, stdout: d.stdout, stderr: d.stderr };
  } finally {
    clearTimeout(t);
  }
}

/** The daemon's status for device socket `path`, over its control endpoint. */
export async function controlStatus(path: string): Promise<DeviceStatus> {
  const c = await ControlClient.connect(path);
  try {
    const r = await c.request({ op: 'status' });
    assert.ok(r.ok && r.status, JSON.stringify(r));
    return r.status;
  } finally {
    c.close();
  }
}
