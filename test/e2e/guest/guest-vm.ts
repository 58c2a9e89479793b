// A real Linux guest under QEMU (TCG), driven over its serial console. The kernel, initramfs and both
// QEMU builds come from the cache that test/e2e/guest/build-guest.sh prepares (see its env.json).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type QemuFlavor = 'qemu10' | 'qemu7';

interface QemuEnv {
  binary: string;
  version: string;
  packageVersion: string;
  firmwareDirs: string[];
  env: Record<string, string>;
}

/** Shape of $CACHE/env.json written by build-guest.sh. */
export interface GuestEnv {
  cacheDir: string;
  kernel: {
    version: string;
    packageVersion: string;
    vmlinuz: string;
    initrd: string;
    modulesDir: string;
    gpioVirtioKo: string;
  };
  qemu10: QemuEnv;
  qemu7: QemuEnv;
  gpiod: string;
  busybox: string;
}

export interface BootOptions {
  qemu: QemuFlavor;
  /** vhost-user-gpio back-end socket (QEMU connects to it); omit to boot without the device. */
  socketPath?: string;
  memMiB?: number;
  /** Receives every console line ("serial: ...") and QEMU stderr line ("qemu: ..."). */
  log?: (line: string) => void;
  /** Time allowed from spawn to the shell being ready. */
  bootTimeoutMs?: number;
  /** Appended to the QEMU command line. */
  extraArgs?: string[];
  /** Boot this initrd instead of the small initramfs (e.g. concatenated layers with node in them). */
  initrd?: string;
  /**
   * A host hook channel: a second serial port (the guest's /dev/ttyS1) connected to this Unix
   * socket, on which the test must already listen (QEMU connects as the client).
   */
  hookSocketPath?: string;
}

export interface RunResult {
  out: string;
  code: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const READY_MARKER = '__VGPIO_GUEST_READY__';
const MAX_TRANSCRIPT = 1 << 20;

export function guestCacheDir(): string {
  return process.env.VGPIO_GUEST_CACHE || join(homedir(), '.cache', 'vgpio-guest');
}

/** Reads env.json, or returns undefined if the cache was never built. */
export async function tryLoadGuestEnv(): Promise<GuestEnv | undefined> {
  let text: string;
  try {
    text = await readFile(join(guestCacheDir(), 'env.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as GuestEnv;
}

export async function loadGuestEnv(): Promise<GuestEnv> {
  const env = await tryLoadGuestEnv();
  if (!env) {
    throw new Error(
      `guest cache not found (${join(guestCacheDir(), 'env.json')}): run test/e2e/guest/build-guest.sh first`,
    );
  }
  return env;
}

// Guests still alive when the test process exits would otherwise keep running (QEMU ignores stdin EOF).
const live = new Set<ChildProcessWithoutNullStreams>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

interface Waiter {
  check: () => boolean;
  fail: (reason: string) => void;
}

export class GuestVm {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  readonly flavor: QemuFlavor;
  readonly env: GuestEnv;
  /** Milliseconds from spawning QEMU to the guest shell being ready. */
  bootMs = 0;

  private readonly child: ChildProcessWithoutNullStreams;
  private readonly log: ((line: string) => void) | undefined;
  /** Console output not yet consumed by boot()/run(), with \r removed. */
  private pending = '';
  private transcriptText = '';
  private stderrText = '';
  private exitInfo: ExitInfo | undefined;
  private waiter: Waiter | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private logBuf = { serial: '', qemu: '' };

  private constructor(
    child: ChildProcessWithoutNullStreams,
    flavor: QemuFlavor,
    env: GuestEnv,
    opts: BootOptions,
  ) {
    this.child = child;
    this.flavor = flavor;
    this.env = env;
    this.log = opts.log;
    if (child.pid === undefined) throw new Error('QEMU did not start');
    this.pid = child.pid;
    live.add(child);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.onSerial(chunk));
    child.stderr.on('data', (chunk: string) => {
      this.stderrText += chunk;
      this.emitLines('qemu', chunk);
    });
    // stdin errors (EPIPE after QEMU died) surface through exited/run() instead.
    child.stdin.on('error', () => {});
    // A failed kill() emits 'error'; without a listener that would crash the test process.
    child.on('error', (err) => {
      this.stderrText += `\n[vgpio] ${err.message}\n`;
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      // 'close' (unlike 'exit') comes after stdout/stderr are drained, so stderr is complete.
      child.on('close', (code, signal) => {
        live.delete(child);
        this.exitInfo = { code, signal };
        this.flushLog();
        this.waiter?.fail(`QEMU exited (${describeExit(this.exitInfo)})`);
        this.waiter = undefined;
        resolve({ code, signal });
      });
    });
  }

  static async versions(): Promise<{ qemu10: string; qemu7: string; kernel: string }> {
    const env = await loadGuestEnv();
    return { qemu10: env.qemu10.version, qemu7: env.qemu7.version, kernel: env.kernel.version };
  }

  static async boot(opts: BootOptions): Promise<GuestVm> {
    const env = await loadGuestEnv();
    const q = env[opts.qemu];
    const mem = opts.memMiB ?? 256;
    // prettier-ignore
    const args = [
      ...q.firmwareDirs.flatMap((d) => ['-L', d]),
      '-accel', 'tcg',
      '-cpu', 'max',
      '-m', `${mem}M`,
      // vhost-user needs guest RAM in a shareable fd.
      '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
      '-numa', 'node,memdev=mem',
      '-nodefaults',
      '-nographic',
      '-serial', 'stdio',
      '-no-reboot',
      '-kernel', env.kernel.vmlinuz,
      '-initrd', opts.initrd ?? env.kernel.initrd,
      '-append', 'console=ttyS0 quiet panic=-1',
    ];
    if (opts.socketPath !== undefined) {
      args.push('-chardev', `socket,id=vgpio0,path=${opts.socketPath}`);
      args.push('-device', 'vhost-user-gpio-pci,chardev=vgpio0');
    }
    if (opts.hookSocketPath !== undefined) {
      args.push('-chardev', `socket,id=hook0,path=${opts.hookSocketPath}`);
      args.push('-serial', 'chardev:hook0');
    }
    args.push(...(opts.extraArgs ?? []));

    const start = performance.now();
    const child = spawn(q.binary, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...q.env },
    });
    // spawn() reports ENOENT etc. asynchronously, and then there is no pid.
    if (child.pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once('error', resolve));
      throw new Error(`cannot start ${q.binary}: ${err.message}`);
    }
    const vm = new GuestVm(child, opts.qemu, env, opts);
    vm.log?.(`qemu: ${q.binary} ${args.join(' ')}`);
    try {
      await vm.waitFor(
        () => {
          const i = vm.pending.indexOf(READY_MARKER);
          if (i < 0) return false;
          vm.pending = vm.pending.slice(i + READY_MARKER.length);
          return true;
        },
        opts.bootTimeoutMs ?? 180_000,
        'the guest shell',
      );
      // The shell prints its banner after the marker; a first round trip also proves it is reading.
      await vm.run('true', 30_000);
    } catch (err) {
      await vm.kill();
      throw err;
    }
    vm.bootMs = performance.now() - start;
    return vm;
  }

  /** QEMU's stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /** Everything the guest printed on its console (last MiB), \r removed. */
  get transcript(): string {
    return this.transcriptText;
  }

  get exitStatus(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /**
   * Runs a shell command in the guest's one interactive shell (busybox ash, as root) and returns its
   * stdout+stderr and exit status. Output is exact apart from \r being removed. stdin is /dev/null.
   * Shell state (cwd, variables, background jobs) persists between calls; `exit` ends the shell and
   * powers the guest off. On timeout the command is sent ^C. Calls are serialised.
   */
  run(cmd: string, timeoutMs = 30_000): Promise<RunResult> {
    const result = this.queue.then(() => this.runNow(cmd, timeoutMs));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Starts a command detached from the shell (double fork) and returns its pid. Use this instead
   * of `cmd &`: the console's busybox ash exits when a child it started in the background ends
   * while it is reading the tty (the SIGCHLD interrupts the read), which powers the guest off.
   */
  async background(cmd: string, timeoutMs = 30_000): Promise<number> {
    const r = await this.run(`(${cmd} </dev/null & echo $!)`, timeoutMs);
    const pid = Number(r.out.trim());
    if (r.code !== 0 || !Number.isInteger(pid))
      throw new Error(`cannot start ${cmd} in the background: ${r.out}`);
    return pid;
  }

  /** SIGKILLs QEMU and waits for it to exit. */
  async kill(): Promise<void> {
    if (this.exitInfo === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Powers the guest off (poweroff -f) and waits for QEMU to exit; SIGKILLs it after timeoutMs. */
  async shutdown(timeoutMs = 30_000): Promise<void> {
    await this.queue;
    if (this.exitInfo !== undefined) return;
    this.child.stdin.write('poweroff -f\n');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) await this.kill();
  }

  private async runNow(cmd: string, timeoutMs: number): Promise<RunResult> {
    if (this.exitInfo !== undefined) {
      throw new Error(`QEMU has exited (${describeExit(this.exitInfo)})${this.stderrSuffix()}`);
    }
    const n = ++this.seq;
    const begin = `__B_${n}__\n`;
    const end = new RegExp(`\\n__E_${n}__ (\\d+)\\n`);
    // printf's %s keeps the literal markers out of the command text, so a tty echo can't fake them.
    // The braces take cmd on its own line so a trailing comment or '&' can't swallow the end marker.
    const script = cmd.trim() === '' ? ':' : cmd;
    const line = `printf '__B_%s__\\n' ${n}; {\n${script}\n} </dev/null; printf '\\n__E_%s__ %d\\n' ${n} $?\n`;
    if (line.split('\n').some((l) => l.length >= 4000)) {
      throw new Error('command line too long for the guest tty (4095-byte canonical line limit)');
    }
    let result: RunResult | undefined;
    const done = this.waitFor(
      () => {
        const b = this.pending.indexOf(begin);
        if (b < 0) return false;
        const m = end.exec(this.pending.slice(b + begin.length));
        if (!m) return false;
        const outEnd = b + begin.length + m.index;
        result = { out: this.pending.slice(b + begin.length, outEnd), code: Number(m[1]) };
        this.pending = this.pending.slice(outEnd + m[0].length);
        return true;
      },
      timeoutMs,
      `command ${JSON.stringify(cmd)}`,
    );
    this.pending = ''; // whatever came before (late output of a timed-out command) is not ours
    this.child.stdin.write(line);
    try {
      await done;
    } catch (err) {
      // Interrupt whatever is still running so the next command gets the shell.
      if (this.exitInfo === undefined) this.child.stdin.write('\x03');
      throw err;
    }
    return result as RunResult;
  }

  private waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.exitInfo !== undefined) {
        reject(new Error(`QEMU has exited (${describeExit(this.exitInfo)})${this.stderrSuffix()}`));
        return;
      }
      const fail = (reason: string) => {
        clearTimeout(timer);
        this.waiter = undefined;
        reject(new Error(`${reason} while waiting for ${what}${this.stderrSuffix()}${this.consoleTail()}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.waiter = {
        check: () => {
          if (!check()) return false;
          clearTimeout(timer);
          resolve();
          return true;
        },
        fail,
      };
      if (this.waiter.check()) this.waiter = undefined;
    });
  }

  private onSerial(chunk: string): void {
    const text = chunk.replace(/\r/g, '');
    this.pending += text;
    this.transcriptText += text;
    if (this.transcriptText.length > MAX_TRANSCRIPT)
      this.transcriptText = this.transcriptText.slice(-MAX_TRANSCRIPT / 2);
    this.emitLines('serial', text);
    if (this.waiter?.check()) this.waiter = undefined;
  }

  private emitLines(kind: 'serial' | 'qemu', text: string): void {
    if (!this.log) return;
    const lines = (this.logBuf[kind] + text).split('\n');
    this.logBuf[kind] = lines.pop() ?? '';
    for (const l of lines) this.log(`${kind}: ${stripAnsi(l)}`);
  }

  private flushLog(): void {
    for (const kind of ['serial', 'qemu'] as const) {
      if (this.logBuf[kind] !== '') this.log?.(`${kind}: ${stripAnsi(this.logBuf[kind])}`);
      this.logBuf[kind] = '';
    }
  }

  private consoleTail(): string {
    const s = stripAnsi(this.transcriptText.slice(-2000)).trimEnd();
    return s === '' ? '' : `\nconsole tail:\n${s}`;
  }

  private stderrSuffix(): string {
    const s = this.stderrText.trim();
    return s === '' ? '' : `\nQEMU stderr:\n${s}`;
  }
}

function describeExit(e: ExitInfo | undefined): string {
  if (!e) return 'running';
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

// SeaBIOS clears the screen (ESC c, ESC [2J): keep that out of logs and error messages.
function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b(\[[0-9;?]*[ -/]*[@-~]|.)/g, '');
}
