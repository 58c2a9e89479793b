import { benchTool } from './bench-tool.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { BenchFrontend, InFlightRun, RoundTrips } from './bench-frontend.ts';

/** The C front-end's program, built by node-gyp beside the addon (binding.gyp target vgpio_bench_frontend). */
export const cFrontendProgram: string = benchTool('vgpio_bench_frontend');

export const cFrontendBuilt = (): boolean => existsSync(cFrontendProgram);

export interface CFrontendOptions {
  /** Pin the front-end to this CPU (sched_setaffinity); otherwise it inherits this process's affinity. */
  cpu?: number | null;
  /** Poll used.idx instead of blocking in read(2) on the call eventfd. */
  spin?: boolean;
  /** Negotiate VIRTIO_F_EVENT_IDX. */
  eventIdx?: boolean;
}

const integer = (s: string | undefined, what: string): number => {
  const n = Number(s);
  if (s === undefined || !/^\d+$/.test(s) || !Number.isSafeInteger(n))
    throw new Error(`vgpio_bench_frontend: ${what} is not a number (${JSON.stringify(s)})`);
  return n;
};

/**
 * native/bench-frontend.c driven command by command (its --commands mode), one process per
 * back-end kept connected, so that several back-ends can be measured slice by slice.
 */
export class CBenchFrontend implements BenchFrontend {
  readonly kind = 'c';
  private buffered = '';
  private stderr = '';
  private waiting: { resolve: (line: string) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private lines = 0;
  lastCpu: number | null = null;
  /** Known once closed: kicks written, and kicks left out because the back-end suppressed them. */
  kicks: { sent: number; suppressed: number } | null = null;

  private constructor(
    private readonly child: ChildProcess,
    private readonly socket: string,
  ) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => {
      this.buffered += s;
      this.deliver();
    });
    child.stderr?.on('data', (s: string) => (this.stderr += s));
    // Writing to a front-end that just died fails with EPIPE; its exit ('close' below) says why.
    child.stdin?.on('error', () => undefined);
    child.on('error', (e) => this.fail(new Error(`vgpio_bench_frontend: ${e.message}`)));
    // 'close': every byte it wrote has been read, so its error message is complete.
    child.on('close', (code, signal) => {
      const why = this.stderr.trim() || `exited ${code ?? signal}`;
      this.fail(new Error(`C front-end on ${socket}: ${why}`));
    });
  }

  get ngpio(): number {
    return this.lines;
  }

  static async open(socket: string, opts: CFrontendOptions = {}): Promise<CBenchFrontend> {
    if (!cFrontendBuilt())
      throw new Error(`${cFrontendProgram} is not built (npm run install builds it with the addon)`);
    const args = ['--socket', socket, '--commands'];
    if (opts.cpu !== undefined && opts.cpu !== null) args.push('--cpu', String(opts.cpu));
    if (opts.spin) args.push('--spin');
    if (opts.eventIdx) args.push('--event-idx');
    const child = spawn(cFrontendProgram, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const f = new CBenchFrontend(child, socket);
    const ready = await f.nextLine();
    const m = /^ready ngpio=(\d+) /.exec(ready);
    if (!m) {
      child.kill();
      throw new Error(`vgpio_bench_frontend: unexpected first line ${JSON.stringify(ready)}`);
    }
    f.lines = Number(m[1]);
    return f;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(this.failure);
  }

  private deliver(): void {
    const nl = this.buffered.indexOf('\n');
    if (nl < 0 || !this.waiting) return;
    const line = this.buffered.slice(0, nl);
    this.buffered = this.buffered.slice(nl + 1);
    const w = this.waiting;
    this.waiting = null;
    w.resolve(line);
  }

  private nextLine(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
      if (this.waiting && this.failure) this.fail(this.failure);
    });
  }

  private command(line: string, reply: string): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    this.child.stdin?.write(line + '\n');
    return this.nextLine().then((l) => {
      const f = l.split(' ');
      if (f[0] !== reply)
        throw new Error(`vgpio_bench_frontend: expected "${reply} ...", got ${JSON.stringify(l)}`);
      return f.slice(1);
    });
  }

  async setInputs(lines: number): Promise<void> {
    await this.command(`inputs ${lines}`, 'inputs');
  }

  async roundTrips(n: number): Promise<RoundTrips> {
    const [cpu, ...ns] = await this.command(`rt ${n}`, 'rt');
    if (ns.length !== n) throw new Error(`vgpio_bench_frontend: rt ${n} gave ${ns.length} samples`);
    return { samplesUs: ns.map((x) => integer(x, 'a round trip') / 1000), cpuNs: integer(cpu, 'CPU time') };
  }

  async inFlight(lines: number, requests: number): Promise<InFlightRun> {
    const r = await this.rate('tp', lines, requests);
    return { requests: r.requests, ns: r.ns, cpuNs: r.cpuNs };
  }

  /**
   * `inFlight`, and each request's latency under that load (from the batch that made it available
   * to the batch that found it used), in µs.
   */
  async inFlightLatencies(lines: number, requests: number): Promise<InFlightRun & { samplesUs: number[] }> {
    const r = await this.rate('tpl', lines, requests);
    return { ...r, samplesUs: r.rest.map((x) => integer(x, 'a latency') / 1000) };
  }

  private async rate(
    cmd: 'tp' | 'tpl',
    lines: number,
    requests: number,
  ): Promise<InFlightRun & { rest: string[] }> {
    const [k, total, ns, cpu, ...rest] = await this.command(`${cmd} ${lines} ${requests}`, cmd);
    if (integer(k, 'lines in flight') !== lines)
      throw new Error(`vgpio_bench_frontend: ${cmd} ${lines} answered for ${k}`);
    const run = {
      requests: integer(total, 'requests'),
      ns: integer(ns, 'wall time'),
      cpuNs: integer(cpu, 'CPU time'),
    };
    if (rest.length !== (cmd === 'tpl' ? run.requests : 0))
      throw new Error(
        `vgpio_bench_frontend: ${cmd} gave ${rest.length} latencies for ${run.requests} requests`,
      );
    return { ...run, rest };
  }

  /** One GET_VALUE on each of lines 0..lines-1. */
  async values(lines: number): Promise<number[]> {
    return (await this.command(`values ${lines}`, 'values')).map((v) => integer(v, 'a value'));
  }

  /** Stops the ring (the C side checks GET_VRING_BASE) and waits for the exit; rejects if that failed. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    try {
      if (!this.failure) {
        const bye = (await this.command('quit', 'bye')).join(' ');
        const m = /^base=\d+ cpu=(\d+) kicks=(\d+) suppressed=(\d+)$/.exec(bye);
        if (!m) throw new Error(`vgpio_bench_frontend: unexpected "bye ${bye}"`);
        this.lastCpu = Number(m[1]);
        this.kicks = { sent: Number(m[2]), suppressed: Number(m[3]) };
      }
    } finally {
      this.child.stdin?.end();
      if (this.failure) this.child.kill();
      await exited;
    }
  }
}
