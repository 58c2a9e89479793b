// End to end: `vgpio serve` as the vhost-user-gpio back-end of a real Linux guest (gpio-virtio
// driver, libgpiod 1.6 tools) under QEMU 10 (interrupts) and QEMU 7.2 (no VIRTIO_GPIO_F_IRQ).
// Needs the guest cache from test/e2e/guest/build-guest.sh; skipped without it.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/control/control-client.ts';
import type { ControlReply, DeviceStatus, LineStatus } from '../../src/control/control-protocol.ts';
import type { LineSnapshot } from '../../src/device/gpio-device.ts';
import { Direction, IrqType } from '../../src/protocol/constants.ts';
import { GuestVm, tryLoadGuestEnv, type QemuFlavor } from './guest/guest-vm.ts';
import { parseGpiomonEvents, type GpiomonEvent } from './guest/gpiomon-output.ts';

/** A status line (names: control protocol v1) in the model's codes, which these checks compare. */
const asSnapshot = (l: LineStatus): LineSnapshot => ({
  line: l.line,
  name: l.name,
  direction: ({ none: Direction.NONE, output: Direction.OUT, input: Direction.IN } as const)[l.direction],
  value: l.level === 'high' ? 1 : 0,
  irqType: (
    {
      none: IrqType.NONE,
      rising: IrqType.EDGE_RISING,
      falling: IrqType.EDGE_FALLING,
      both: IrqType.EDGE_BOTH,
      'level-high': IrqType.LEVEL_HIGH,
      'level-low': IrqType.LEVEL_LOW,
    } as const
  )[l.edge],
  armed: l.armed,
  latched: l.latched,
  counters: l.counters,
});

const env = await tryLoadGuestEnv();
const skip = env ? false : 'guest cache missing: run test/e2e/guest/build-guest.sh';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The CLI from source through tsx (bin/vgpio.js runs the compiled dist/, tested by test/consumer).
const VGPIO = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
const CHIP = 'gpiochip0';
const TEST_TIMEOUT = 90_000;
const BOOT_TIMEOUT = 90_000;
/** Pause between host-driven level changes. */
const STEP_MS = 150;

// ---------------------------------------------------------------------------------------------
// The daemon and the CLI

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const liveDaemons = new Set<ChildProcessWithoutNullStreams>();
process.on('exit', () => {
  for (const d of liveDaemons) d.kill('SIGKILL');
});

/** `vgpio serve` in a child process, its stderr (the log) collected. */
class Daemon {
  log = '';
  exitInfo: ExitInfo | undefined;
  /** Whether stop() was called (a SIGTERM logged otherwise came from outside the test). */
  stopping = false;
  readonly exited: Promise<ExitInfo>;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    liveDaemons.add(child);
    child.stdout.resume();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.log += chunk;
      for (const w of this.waiters) w();
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        liveDaemons.delete(child);
        this.exitInfo = { code, signal };
        for (const w of this.waiters) w();
        resolve(this.exitInfo);
      });
    });
  }

  static async start(
    socketPath: string,
    lines: number,
    names: string[],
    extra: string[] = [],
  ): Promise<Daemon> {
    // prettier-ignore
    const args = [...VGPIO, 'serve', '--socket', socketPath, '--lines', String(lines),
      '--names', names.join(','), '--log-level', 'debug', ...extra];
    const d = new Daemon(spawn(process.execPath, args, { cwd: ROOT, stdio: 'pipe' }));
    try {
      await d.waitForLog(/ INFO {2}serving devices=1 (?:workers=1 )?pid=\d+/, 20_000);
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Resolves once the log matches `re` (searching from `from`), rejects if the daemon exits first. */
  waitForLog(re: RegExp, timeoutMs: number, from = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (re.test(this.log.slice(from))) done();
        else if (!this.running) done(new Error(`vgpio serve exited (${JSON.stringify(this.exitInfo)})`));
      };
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(new Error(`${err.message} while waiting for ${re} in its log:\n${this.log}`));
        else resolve();
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** SIGTERM, then SIGKILL if it is still running after 5 s. */
  async stop(): Promise<ExitInfo> {
    this.stopping = true;
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `vgpio ARGS...` (the real CLI, in its own process). */
function vgpio(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...VGPIO, ...args], { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// One daemon (and its control connection) plus the guests booted against it

class Rig {
  readonly vms: GuestVm[] = [];
  private constructor(
    readonly dir: string,
    readonly socket: string,
    readonly daemon: Daemon,
    readonly ctl: ControlClient,
  ) {}

  static async start(lines: number, names: string[], extra: string[] = []): Promise<Rig> {
    const dir = await mkdtemp(join(tmpdir(), 'vgpio-e2e-'));
    const socket = join(dir, 'gpio.sock');
    let daemon: Daemon | undefined;
    try {
      daemon = await Daemon.start(socket, lines, names, extra);
      const ctl = await ControlClient.connect(socket);
      return new Rig(dir, socket, daemon, ctl);
    } catch (err) {
      await daemon?.stop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The guest booted last. */
  get vm(): GuestVm {
    const vm = this.vms.at(-1);
    if (!vm) throw new Error('no guest booted');
    return vm;
  }

  async boot(qemu: QemuFlavor): Promise<GuestVm> {
    try {
      const vm = await GuestVm.boot({ qemu, socketPath: this.socket, bootTimeoutMs: BOOT_TIMEOUT });
      this.vms.push(vm);
      return vm;
    } catch (err) {
      (err as Error).message += `\nvgpio serve log:\n${this.daemon.log}`;
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.vms.map((vm) => vm.kill()));
    this.ctl.close();
    await this.daemon.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Runs a test body; if it throws, the daemon's log and every guest's console transcript (and
   * QEMU's stderr) go into the test's diagnostics.
   */
  async diagnose(t: TestContext, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (err) {
      const { daemon } = this;
      if (/ shutting down reason=SIG/.test(daemon.log) && !daemon.stopping)
        t.diagnostic('vgpio serve was signalled by something outside this test (not by Daemon.stop)');
      t.diagnostic(`vgpio serve log (${daemon.running ? 'running' : 'exited'}):\n${daemon.log}`);
      this.vms.forEach((vm, i) => {
        t.diagnostic(`guest ${i + 1} (${vm.flavor}) console transcript:\n${vm.transcript}`);
        if (vm.stderr.trim() !== '') t.diagnostic(`guest ${i + 1} QEMU stderr:\n${vm.stderr}`);
      });
      throw err;
    }
  }

  // --- host side, through the control endpoint ---

  async status(): Promise<DeviceStatus> {
    const r = await this.ctl.request({ op: 'status' });
    if (!r.ok || !r.status) throw new Error(`status: ${JSON.stringify(r)}`);
    return r.status;
  }

  async line(n: number): Promise<LineSnapshot> {
    return asSnapshot((await this.status()).lines[n]);
  }

  async input(line: number, value: 0 | 1): Promise<void> {
    const r = await this.ctl.request({ op: 'input', line, value });
    assert.deepEqual(r, { ok: true }, `input ${line}=${value}`);
  }

  output(line: number): Promise<ControlReply> {
    return this.ctl.request({ op: 'output', line });
  }

  /** Polls the device status until `pred` holds for line `n`. */
  async waitLine(n: number, what: string, pred: (l: LineSnapshot) => boolean, timeoutMs = 15_000) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const l = await this.line(n);
      if (pred(l)) return l;
      if (performance.now() > deadline)
        throw new Error(
          `line ${n}: timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(l)}`,
        );
      await sleep(20);
    }
  }

  /** Like waitArmed, through the CLI: polls `vgpio status PATH --json`. */
  async waitArmedCli(n: number, timeoutMs = 15_000): Promise<LineSnapshot> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const r = await vgpio('status', this.socket, '--json');
      assert.equal(r.code, 0, r.stderr);
      const l = asSnapshot((JSON.parse(r.stdout) as DeviceStatus).lines[n]);
      if (l.armed) return l;
      if (performance.now() > deadline)
        throw new Error(
          `line ${n}: vgpio status never showed it armed in ${timeoutMs} ms: ${JSON.stringify(l)}`,
        );
    }
  }

  /** Waits until the guest holds an eventq buffer for the line (its interrupt is unmasked). */
  waitArmed(n: number): Promise<LineSnapshot> {
    return this.waitLine(n, 'an armed eventq buffer', (l) => l.armed);
  }

  /**
   * Applies the levels one after another, STEP_MS apart. With `rearm`, each step also waits until
   * the guest has given the line an eventq buffer again (or released the line, as `gpiomon -n`
   * does after its last event), so a slow TCG guest can't have two edges merged into one latch.
   */
  async drive(line: number, levels: Array<0 | 1>, rearm: boolean): Promise<void> {
    for (const level of levels) {
      await sleep(STEP_MS);
      if (rearm)
        await this.waitLine(
          line,
          'an eventq buffer or the release',
          (l) => l.armed || l.irqType === IrqType.NONE,
        );
      await this.input(line, level);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Guest side

/** `gpioget` for several lines; returns the levels. */
async function gpioget(vm: GuestVm, lines: number[]): Promise<number[]> {
  const r = await vm.run(`gpioget ${CHIP} ${lines.join(' ')}`);
  assert.equal(r.code, 0, `gpioget failed: ${r.out}`);
  assert.match(r.out, /^[01]( [01])*\n$/, 'gpioget output');
  return r.out.trim().split(' ').map(Number);
}

function assertEvents(events: GpiomonEvent[], line: number, expected: GpiomonEvent['edge'][]): void {
  assert.deepEqual(
    events.map((e) => `${e.edge}@${e.offset}`),
    expected.map((e) => `${e}@${line}`),
  );
  for (let i = 1; i < events.length; i++)
    assert.ok(events[i].time > events[i - 1].time, `timestamps increase: ${JSON.stringify(events)}`);
}

/** Kills a background guest process (SIGTERM) and waits until the device sees it release `line`. */
async function killAndWaitReleased(rig: Rig, pid: number, line: number): Promise<void> {
  const r = await rig.vm.run(`kill ${pid}`);
  assert.equal(r.code, 0, `kill ${pid}: ${r.out}`);
  await rig.waitLine(
    line,
    'the guest to release it',
    (l) => l.direction === Direction.NONE && l.irqType === IrqType.NONE && !l.armed,
  );
}

const NAMES = ['led', 'button', 'sw1', 'sw2', '', 'relay', '', 'irq'];

// ---------------------------------------------------------------------------------------------

describe('vgpio serving a Linux guest under QEMU 10 (interrupts)', { timeout: 300_000 }, () => {
  let rig: Rig;
  before(async () => {
    if (!env) return;
    rig = await Rig.start(NAMES.length, NAMES);
    await rig.boot('qemu10');
  });
  after(async () => {
    await rig?.close();
  });

  it('gpiodetect and gpioinfo show the configured lines and names', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const { vm } = rig;
      t.diagnostic(`boot to shell ${Math.round(vm.bootMs)} ms`);
      assert.deepEqual(await vm.run('gpiodetect'), { out: `${CHIP} [virtio0] (8 lines)\n`, code: 0 });

      const info = await vm.run(`gpioinfo ${CHIP}`);
      assert.equal(info.code, 0, info.out);
      const [head, ...rows] = info.out.trimEnd().split('\n');
      assert.equal(head, `${CHIP} - 8 lines:`);
      const parsed = rows.map((row) => {
        const m =
          /^\tline +(\d+): +("([^"]*)"|unnamed) +(unused|"[^"]*") +(input|output) +active-high *$/.exec(row);
        assert.ok(m, `gpioinfo row ${JSON.stringify(row)}`);
        return { offset: Number(m[1]), name: m[3] ?? null, consumer: m[4], direction: m[5] };
      });
      assert.deepEqual(
        parsed,
        NAMES.map((name, offset) => ({
          offset,
          name: name === '' ? null : name,
          consumer: 'unused',
          direction: 'input',
        })),
      );
      assert.ok(rows.includes('\tline   4:      unnamed       unused   input  active-high '), info.out);

      // The host agrees, through the CLI's JSON status.
      const st = await vgpio('status', rig.socket, '--json');
      assert.equal(st.code, 0, st.stderr);
      const status = JSON.parse(st.stdout) as DeviceStatus;
      assert.equal(status.socket, rig.socket);
      assert.equal(status.connected, true);
      assert.equal(status.irqNegotiated, true);
      assert.equal(status.ngpio, 8);
      assert.deepEqual(
        status.lines.map((l) => l.name),
        NAMES,
      );
      assert.match(rig.daemon.log, / INFO {2}interrupts negotiated \(VIRTIO_GPIO_F_IRQ\)/);
      assert.doesNotMatch(rig.daemon.log, /did not negotiate/);
    }),
  );

  it('gpioset -m signal in the guest drives outputs the host reads', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const { vm } = rig;
      const lines = [0, 5, 7];
      for (const levels of [
        [1, 0, 1],
        [0, 1, 0],
      ]) {
        const assignments = lines.map((l, i) => `${l}=${levels[i]}`).join(' ');
        const pid = await vm.background(`gpioset -m signal ${CHIP} ${assignments}`);
        for (const l of lines) await rig.waitLine(l, 'direction OUT', (s) => s.direction === Direction.OUT);
        // The CLI for the first line, the control endpoint for all of them.
        const cli = await vgpio('output', rig.socket, String(lines[0]));
        assert.deepEqual(cli, { code: 0, stdout: `${levels[0]}\n`, stderr: '' });
        const byName = await vgpio('output', rig.socket, 'relay');
        assert.deepEqual(byName, { code: 0, stdout: `${levels[1]}\n`, stderr: '' });
        for (const [i, l] of lines.entries())
          assert.deepEqual(await rig.output(l), { ok: true, value: levels[i] }, `line ${l}`);
        // The guest reads back the level it drives.
        const held = await vm.run(`gpioinfo ${CHIP} | grep -E 'line +(0|5|7):'`);
        assert.equal(held.out.match(/"gpioset" +output/g)?.length, 3, held.out);

        // Killing gpioset releases the lines: SET_DIRECTION NONE, no longer outputs.
        await killAndWaitReleased(rig, pid, lines[0]);
        for (const l of lines) await rig.waitLine(l, 'direction NONE', (s) => s.direction === Direction.NONE);
        const gone = await vgpio('output', rig.socket, String(lines[0]));
        assert.deepEqual(gone, {
          code: 1,
          stdout: '',
          stderr: `vgpio: line ${lines[0]} is not an output (direction none)\n`,
        });
        for (const l of lines)
          assert.deepEqual(await rig.output(l), {
            ok: false,
            code: 'not-output',
            error: `line ${l} is not an output (direction none)`,
          });
      }
    }),
  );

  it('the host drives inputs the guest reads with gpioget', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const { vm } = rig;
      const lines = [1, 3, 6];
      // The CLI for one line (by name and by offset), the control endpoint elsewhere.
      assert.deepEqual(await vgpio('input', rig.socket, 'button', '1'), { code: 0, stdout: '', stderr: '' });
      await rig.input(3, 0);
      await rig.input(6, 1);
      assert.deepEqual(await gpioget(vm, lines), [1, 0, 1]);
      assert.deepEqual(await vgpio('input', rig.socket, '1', '0'), { code: 0, stdout: '', stderr: '' });
      await rig.input(3, 1);
      await rig.input(6, 0);
      assert.deepEqual(await gpioget(vm, lines), [0, 1, 0]);
      assert.deepEqual(await gpioget(vm, [6, 3, 1]), [0, 1, 0]);
      // gpioget released the lines again.
      for (const l of lines) assert.equal((await rig.line(l)).direction, Direction.NONE, `line ${l}`);
    }),
  );

  interface EdgeCase {
    name: string;
    flag: string;
    line: number;
    expected: GpiomonEvent['edge'][];
    /** Wait for the arming with `vgpio status --json` rather than the control client. */
    viaCli?: boolean;
  }
  const edgeCases: EdgeCase[] = [
    { name: 'rising edges (-r)', flag: '-r', line: 2, expected: ['RISING', 'RISING'], viaCli: true },
    { name: 'falling edges (-f)', flag: '-f', line: 4, expected: ['FALLING', 'FALLING'] },
    { name: 'both edges', flag: '', line: 6, expected: ['RISING', 'FALLING', 'RISING', 'FALLING'] },
  ];
  const SEQUENCE: Array<0 | 1> = [1, 0, 1, 0]; // from 0: 0→1→0→1→0
  const irqTypes: Record<string, IrqType> = {
    '-r': IrqType.EDGE_RISING,
    '-f': IrqType.EDGE_FALLING,
    '': IrqType.EDGE_BOTH,
  };

  for (const c of edgeCases) {
    it(`gpiomon sees exactly the host's ${c.name}`, { skip, timeout: TEST_TIMEOUT }, (t) =>
      rig.diagnose(t, async () => {
        const { vm } = rig;
        const mon = `gpiomon ${c.flag} ${CHIP} ${c.line}`.replace(/ +/g, ' ');
        await rig.input(c.line, 0);

        // 1. gpiomon -n COUNT: exits by itself after exactly the expected events.
        const c0 = (await rig.line(c.line)).counters;
        const fg = vm.run(mon.replace('gpiomon', `gpiomon -n ${c.expected.length}`), 30_000);
        fg.catch(() => undefined); // awaited below, unless waiting for the arming fails first
        const armed = c.viaCli ? await rig.waitArmedCli(c.line) : await rig.waitArmed(c.line);
        assert.equal(armed.irqType, irqTypes[c.flag]);
        await rig.drive(c.line, SEQUENCE, true);
        const r = await fg;
        assert.equal(r.code, 0, r.out);
        assertEvents(parseGpiomonEvents(r.out), c.line, c.expected);
        await rig.waitLine(c.line, 'gpiomon to release it', (l) => l.irqType === IrqType.NONE && !l.armed);
        const c1 = (await rig.line(c.line)).counters;
        assert.equal(c1.edges - c0.edges, c.expected.length, 'edges counted by the device');
        assert.equal(c1.delivered - c0.delivered, c.expected.length, 'interrupts delivered');

        // 2. A monitor without -n sees the same events and nothing more: it runs 1 s past the last
        // edge. (Its stdout is a file, so fully buffered: read it once gpiomon exited on SIGTERM.)
        const file = `/tmp/mon-${c.line}.txt`;
        const pid = await vm.background(`${mon} >${file} 2>&1`);
        await rig.waitArmed(c.line);
        await rig.drive(c.line, SEQUENCE, true);
        await sleep(1000);
        await killAndWaitReleased(rig, pid, c.line);
        const out = await vm.run(`cat ${file}`);
        assertEvents(parseGpiomonEvents(out.out), c.line, c.expected);
        const c2 = (await rig.line(c.line)).counters;
        assert.equal(c2.delivered - c1.delivered, c.expected.length, 'interrupts delivered');
      }),
    );
  }

  it('edges nobody watched produce no event later', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const { vm } = rig;
      // Line 2 was monitored (rising) before and released; line 3 never was.
      for (const line of [2, 3]) {
        await rig.input(line, 0);
        assert.equal((await rig.line(line)).irqType, IrqType.NONE);
        await rig.drive(line, [1, 0, 1, 0, 1, 0], false);

        const file = `/tmp/late-${line}.txt`;
        const pid = await vm.background(`gpiomon ${CHIP} ${line} >${file} 2>&1`);
        const armed = await rig.waitArmed(line);
        assert.equal(armed.latched, false);
        await sleep(1000);
        const quiet = await rig.line(line);
        assert.deepEqual(
          [quiet.armed, quiet.counters.delivered],
          [true, armed.counters.delivered],
          'nothing delivered for the old edges',
        );

        await rig.input(line, 1);
        await rig.waitArmed(line); // delivered, and the guest queued a new buffer
        await sleep(300);
        await killAndWaitReleased(rig, pid, line);
        const done = await rig.line(line);
        assert.equal(done.counters.delivered - armed.counters.delivered, 1);
        assertEvents(parseGpiomonEvents((await vm.run(`cat ${file}`)).out), line, ['RISING']);
      }
      assert.doesNotMatch(rig.daemon.log, / (WARN|ERROR) /);
    }),
  );
});

describe('vgpio serving a Linux guest under QEMU 7.2 (no interrupts)', { timeout: 300_000 }, () => {
  let rig: Rig;
  before(async () => {
    if (!env) return;
    rig = await Rig.start(NAMES.length, NAMES);
    await rig.boot('qemu7');
  });
  after(async () => {
    await rig?.close();
  });

  it('the chip works without VIRTIO_GPIO_F_IRQ', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const { vm } = rig;
      t.diagnostic(`boot to shell ${Math.round(vm.bootMs)} ms`);
      assert.deepEqual(await vm.run('gpiodetect'), { out: `${CHIP} [virtio0] (8 lines)\n`, code: 0 });
      const info = await vm.run(`gpioinfo ${CHIP}`);
      assert.equal(info.code, 0, info.out);
      assert.match(info.out, /^\tline +1: +"button" +unused +input /m);
      assert.match(info.out, /^\tline +4: +unnamed +unused +input /m);

      assert.match(
        rig.daemon.log,
        / WARN {2}the driver did not negotiate VIRTIO_GPIO_F_IRQ: interrupts are unavailable \(QEMU < 9 never passes it to the guest\)/,
      );
      assert.doesNotMatch(rig.daemon.log, /interrupts negotiated/);
      const status = await rig.status();
      assert.equal(status.connected, true);
      assert.equal(status.irqNegotiated, false);
      assert.ok(status.features !== null && (BigInt(status.features) & 1n) === 0n, String(status.features));

      // Guest → host.
      const pid = await vm.background(`gpioset -m signal ${CHIP} 0=1 5=0`);
      await rig.waitLine(5, 'direction OUT', (l) => l.direction === Direction.OUT);
      assert.deepEqual(await vgpio('output', rig.socket, 'led'), { code: 0, stdout: '1\n', stderr: '' });
      assert.deepEqual(await rig.output(5), { ok: true, value: 0 });
      await killAndWaitReleased(rig, pid, 0);
      const pid2 = await vm.background(`gpioset -m signal ${CHIP} 0=0 5=1`);
      await rig.waitLine(5, 'driving 1', (l) => l.direction === Direction.OUT && l.value === 1);
      assert.deepEqual(await rig.output(0), { ok: true, value: 0 });
      assert.deepEqual(await rig.output(5), { ok: true, value: 1 });
      await killAndWaitReleased(rig, pid2, 0);
      assert.deepEqual(await rig.output(0), {
        ok: false,
        code: 'not-output',
        error: 'line 0 is not an output (direction none)',
      });

      // Host → guest.
      await rig.input(1, 1);
      await rig.input(2, 0);
      assert.deepEqual(await gpioget(vm, [1, 2]), [1, 0]);
      await rig.input(1, 0);
      await rig.input(2, 1);
      assert.deepEqual(await gpioget(vm, [1, 2]), [0, 1]);
    }),
  );

  it('gpiomon fails in the guest', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const { vm } = rig;
      // Without VIRTIO_GPIO_F_IRQ the driver registers no irq chip, so the line has no interrupt.
      const r = await vm.run(`gpiomon -n 1 ${CHIP} 2`, 15_000);
      assert.deepEqual(r, { out: 'gpiomon: error waiting for events: No such device\n', code: 1 });
      const l = await rig.line(2);
      assert.equal(l.irqType, IrqType.NONE);
      assert.equal(l.armed, false);
      // The line is usable afterwards.
      await rig.input(2, 1);
      assert.deepEqual(await gpioget(vm, [2]), [1]);
      assert.doesNotMatch(rig.daemon.log, / ERROR /);
    }),
  );
});

describe('QEMU killed and started again against the same daemon', { timeout: 300_000 }, () => {
  let rig: Rig;
  let first: GuestVm;
  let monitorLine: number;
  before(async () => {
    if (!env) return;
    rig = await Rig.start(NAMES.length, NAMES);
    first = await rig.boot('qemu10');
  });
  after(async () => {
    await rig?.close();
  });

  it('the first guest holds an output and monitors a line', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      await rig.input(1, 1);
      await rig.input(2, 0);
      await rig.input(3, 1);
      assert.deepEqual(await gpioget(first, [1, 2, 3]), [1, 0, 1]);
      await first.background(`gpioset -m signal ${CHIP} 0=1`);
      await rig.waitLine(0, 'driving 1', (l) => l.direction === Direction.OUT && l.value === 1);
      monitorLine = 6;
      await rig.input(monitorLine, 0);
      await first.background(`gpiomon ${CHIP} ${monitorLine}`);
      await rig.waitArmed(monitorLine);
    }),
  );

  it('SIGKILLed QEMU: the daemon keeps the lines and listens again', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const from = rig.daemon.log.length;
      await first.kill();
      assert.equal((await first.exited).signal, 'SIGKILL');
      await rig.daemon.waitForLog(/ INFO {2}front-end disconnected; listening again/, 10_000, from);
      assert.equal(rig.daemon.running, true);

      const status = await rig.status();
      assert.equal(status.connected, false);
      const [l0, l1, l2, l3] = status.lines.map(asSnapshot);
      assert.deepEqual([l0.direction, l0.value], [Direction.OUT, 1], 'line 0 still driven');
      assert.deepEqual([l1.value, l2.value, l3.value], [1, 0, 1], 'input levels kept');
      const mon = asSnapshot(status.lines[monitorLine]);
      assert.deepEqual(
        { irqType: mon.irqType, armed: mon.armed, latched: mon.latched },
        { irqType: IrqType.NONE, armed: false, latched: false },
        'interrupt state dropped with the driver',
      );
      assert.deepEqual(await vgpio('output', rig.socket, '0'), { code: 0, stdout: '1\n', stderr: '' });

      // Edges while nobody is connected: not remembered for the next guest.
      await rig.drive(monitorLine, [1, 0, 1, 0], false);
    }),
  );

  it('a new guest sees the lines as the first one left them', { skip, timeout: TEST_TIMEOUT }, (t) =>
    rig.diagnose(t, async () => {
      const from = rig.daemon.log.length;
      const vm = await rig.boot('qemu10');
      t.diagnostic(`second boot to shell ${Math.round(vm.bootMs)} ms`);
      assert.match(rig.daemon.log.slice(from), / INFO {2}front-end connected/);
      assert.match(rig.daemon.log.slice(from), / INFO {2}features negotiated .*features=0x170000001/);
      assert.equal((await rig.status()).irqNegotiated, true);

      // Line 0 is still an output driving 1 until the new guest touches it.
      const st = await vgpio('status', rig.socket, '--json');
      assert.equal(st.code, 0, st.stderr);
      const status = JSON.parse(st.stdout) as DeviceStatus;
      assert.equal(status.connected, true);
      assert.deepEqual([status.lines[0].direction, status.lines[0].level], ['output', 'high']);
      const info = await vm.run(`gpioinfo ${CHIP}`);
      assert.match(info.out, /^gpiochip0 - 8 lines:\n\tline +0: +"led" +unused +output /);
      assert.deepEqual(await gpioget(vm, [1, 2, 3]), [1, 0, 1]);

      // The monitored line: nothing stale, and interrupts work for the new guest.
      const file = '/tmp/mon-after.txt';
      const pid = await vm.background(`gpiomon ${CHIP} ${monitorLine} >${file} 2>&1`);
      const armed = await rig.waitArmed(monitorLine);
      assert.equal(armed.latched, false);
      await sleep(500);
      await rig.input(monitorLine, 1);
      await rig.waitArmed(monitorLine);
      await sleep(300);
      await killAndWaitReleased(rig, pid, monitorLine);
      assertEvents(parseGpiomonEvents((await vm.run(`cat ${file}`)).out), monitorLine, ['RISING']);
      const done = await rig.line(monitorLine);
      assert.equal(done.counters.delivered - armed.counters.delivered, 1);

      // Now the new guest takes line 0 over: drives 0, then releases it.
      assert.deepEqual(await vm.run(`gpioset ${CHIP} 0=0`), { out: '', code: 0 });
      const l0 = await rig.line(0);
      assert.deepEqual([l0.direction, l0.value], [Direction.NONE, 0]);
      assert.deepEqual(await rig.output(0), {
        ok: false,
        code: 'not-output',
        error: 'line 0 is not an output (direction none)',
      });
      assert.equal(rig.daemon.running, true);
      assert.doesNotMatch(rig.daemon.log, / (WARN|ERROR) /);
    }),
  );
});

describe('vgpio serve --workers 1: the device served from a worker thread', { timeout: 300_000 }, () => {
  let rig: Rig;
  before(async () => {
    if (!env) return;
    rig = await Rig.start(NAMES.length, NAMES, ['--workers', '1']);
    await rig.boot('qemu10');
  });
  after(async () => {
    await rig?.close();
  });

  it(
    'the guest drives outputs, reads inputs and gets interrupts through the worker',
    { skip, timeout: TEST_TIMEOUT },
    (t) =>
      rig.diagnose(t, async () => {
        const { vm } = rig;
        assert.match(rig.daemon.log, / INFO {2}serving devices=1 workers=1 pid=\d+/);
        assert.deepEqual(await vm.run('gpiodetect'), { out: `${CHIP} [virtio0] (8 lines)\n`, code: 0 });
        assert.match(rig.daemon.log, / INFO {2}interrupts negotiated \(VIRTIO_GPIO_F_IRQ\)/);

        const pid = await vm.background(`gpioset -m signal ${CHIP} 0=1 5=0`);
        await rig.waitLine(5, 'direction OUT', (l) => l.direction === Direction.OUT);
        assert.deepEqual(await vgpio('output', rig.socket, 'led'), { code: 0, stdout: '1\n', stderr: '' });
        await killAndWaitReleased(rig, pid, 0);

        await rig.input(1, 1);
        await rig.input(2, 0);
        assert.deepEqual(await gpioget(vm, [1, 2]), [1, 0]);

        await rig.input(6, 0);
        const fg = vm.run(`gpiomon -n 2 ${CHIP} 6`, 30_000);
        fg.catch(() => undefined);
        await rig.waitArmed(6);
        await rig.drive(6, [1, 0], true);
        const r = await fg;
        assert.equal(r.code, 0, r.out);
        assertEvents(parseGpiomonEvents(r.out), 6, ['RISING', 'FALLING']);
        assert.doesNotMatch(rig.daemon.log, / ERROR /);
      }),
  );
});
