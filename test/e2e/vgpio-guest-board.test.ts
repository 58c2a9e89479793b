// End to end: boards (src/board) proven with real Linux guests (gpio-virtio, libgpiod 1.6 tools)
// under QEMU 10 (TCG): a wire from a guest's own output to its own input; two guests on one daemon
// wired both ways, with the guest-to-guest round trip; a bouncing button and a clock seen by gpiomon.
// Needs the guest cache from test/e2e/guest/build-guest.sh; skipped without it.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/control/control-client.ts';
import type { ControlEvent } from '../../src/control/control-protocol.ts';
import { GuestVm, tryLoadGuestEnv } from './guest/guest-vm.ts';
import { parseGpiomonEvents } from './guest/gpiomon-output.ts';

const env = await tryLoadGuestEnv();
const skip = env ? false : 'guest cache missing: run test/e2e/guest/build-guest.sh';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VGPIO = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
const CHIP = 'gpiochip0';
const BOOT_TIMEOUT = 120_000;

const live = new Set<ChildProcessWithoutNullStreams>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** `vgpio serve --config BOARD.json` and guests booted against its devices. */
class BoardRig {
  log = '';
  readonly vms: GuestVm[] = [];
  readonly ctl = new Map<string, ControlClient>();
  private constructor(
    readonly dir: string,
    readonly sockets: Record<string, string>,
    readonly daemon: ChildProcessWithoutNullStreams,
  ) {}

  /** `board` is a board file whose devices' sockets are given by name: {socket: NAME} → DIR/NAME.sock. */
  static async start(
    board: { devices: Array<Record<string, unknown> & { name: string }> } & Record<string, unknown>,
  ) {
    const dir = await mkdtemp(join(tmpdir(), 'vgpio-board-e2e-'));
    const sockets = Object.fromEntries(board.devices.map((d) => [d.name, join(dir, `${d.name}.sock`)]));
    const file = join(dir, 'board.json');
    await writeFile(
      file,
      JSON.stringify({ ...board, devices: board.devices.map((d) => ({ ...d, socket: sockets[d.name] })) }),
    );
    const child = spawn(process.execPath, [...VGPIO, 'serve', '--config', file, '--log-level', 'debug'], {
      cwd: ROOT,
    });
    live.add(child);
    const rig = new BoardRig(dir, sockets, child);
    child.stdout.resume();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (rig.log += c));
    child.on('close', () => live.delete(child));
    const deadline = performance.now() + 20_000;
    while (!/ serving devices=\d+/.test(rig.log)) {
      if (performance.now() > deadline || child.exitCode !== null) {
        await rig.close();
        throw new Error(`vgpio serve did not start:\n${rig.log}`);
      }
      await sleep(50);
    }
    for (const [name, s] of Object.entries(sockets)) rig.ctl.set(name, await ControlClient.connect(s));
    return rig;
  }

  control(name: string): ControlClient {
    const c = this.ctl.get(name);
    if (!c) throw new Error(`no device ${name}`);
    return c;
  }

  async boot(device: string): Promise<GuestVm> {
    const vm = await GuestVm.boot({
      qemu: 'qemu10',
      socketPath: this.sockets[device],
      bootTimeoutMs: BOOT_TIMEOUT,
    });
    this.vms.push(vm);
    return vm;
  }

  /** Polls until the guest holds an eventq buffer for the line (its interrupt is unmasked). */
  async waitArmed(device: string, line: number, timeoutMs = 20_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = await this.control(device).status();
      if (s.lines[line].armed) return;
      if (performance.now() > deadline)
        throw new Error(`${device}:${line} never armed: ${JSON.stringify(s.lines[line])}`);
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.vms.map((vm) => vm.kill()));
    for (const c of this.ctl.values()) c.close();
    if (this.daemon.exitCode === null) {
      this.daemon.kill('SIGTERM');
      await new Promise((r) => this.daemon.once('close', r));
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  async diagnose(t: TestContext, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (err) {
      t.diagnostic(`vgpio serve log:\n${this.log}`);
      this.vms.forEach((vm, i) => t.diagnostic(`guest ${i + 1} console transcript:\n${vm.transcript}`));
      throw err;
    } finally {
      await this.close();
    }
  }
}

/** Runs `cmd` detached in the guest (GuestVm.background: never `cmd &` on the console shell). */
const start = (vm: GuestVm, cmd: string): Promise<number> => vm.background(cmd);

/** Waits for a detached command to end, then prints `file`. */
const finish = (vm: GuestVm, pid: number, file: string) =>
  vm.run(
    `i=0; while kill -0 ${pid} 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && break; sleep 0.1; done; cat ${file}`,
    30_000,
  );

/**
 * libgpiod 1.6 gpioset holds a value while it runs and releases the line when it exits (direction
 * NONE: the wire lets go, the far input reads its pull, 0 here). So holding 1, 0, 1, 0 in turn makes
 * the far input rise, fall, (nothing), rise, fall.
 */
const TOGGLES = `for v in 1 0 1 0; do gpioset -m time -u 300000 ${CHIP} 0=$v; done`;
const TOGGLE_EDGES = ['RISING', 'FALLING', 'RISING', 'FALLING'];

describe('boards with real guests (QEMU 10, TCG)', { concurrency: false }, () => {
  it(
    'one guest, a wire from its line 0 to its line 1: its gpioset on 0 is seen by its gpiomon on 1',
    { skip, timeout: 180_000 },
    async (t) => {
      const rig = await BoardRig.start({
        devices: [{ name: 'board', lines: 4 }],
        wires: [{ from: 'board:0', to: 'board:1' }],
      });
      await rig.diagnose(t, async () => {
        const vm = await rig.boot('board');
        const mon = await start(vm, `gpiomon -n 4 ${CHIP} 1 >/tmp/mon 2>&1`);
        await rig.waitArmed('board', 1);
        // From here on only the guest acts: its own output interrupts its own input through the wire.
        assert.equal((await vm.run(TOGGLES, 30_000)).code, 0);
        const r = await finish(vm, mon, '/tmp/mon');
        const events = parseGpiomonEvents(r.out);
        assert.deepEqual(
          events.map((e) => `${e.edge}@${e.offset}`),
          TOGGLE_EDGES.map((e) => `${e}@1`),
        );
        for (let i = 1; i < events.length; i++) assert.ok(events[i].time > events[i - 1].time, r.out);
      });
    },
  );

  it(
    "two guests on one daemon, wired both ways: B sees each of A's edges once, in order; A sees B answer",
    { skip, timeout: 300_000 },
    async (t) => {
      const rig = await BoardRig.start({
        devices: [
          { name: 'a', lines: 2 },
          { name: 'b', lines: 2 },
        ],
        wires: [
          { from: 'a:0', to: 'b:1' },
          { from: 'b:0', to: 'a:1' },
        ],
      });
      await rig.diagnose(t, async () => {
        const [a, b] = await Promise.all([rig.boot('a'), rig.boot('b')]);
        // 1. A toggles; B's gpiomon sees each edge exactly once, in order.
        const mon = await start(b, `gpiomon -n 4 ${CHIP} 1 >/tmp/mon 2>&1`);
        await rig.waitArmed('b', 1);
        assert.equal((await a.run(TOGGLES, 30_000)).code, 0);
        const seen = parseGpiomonEvents((await finish(b, mon, '/tmp/mon')).out);
        assert.deepEqual(
          seen.map((e) => `${e.edge}@${e.offset}`),
          TOGGLE_EDGES.map((e) => `${e}@1`),
        );

        // 2. B answers: on A's rising edge B drives its line 0, wired back to A's line 1.
        const trips: number[] = [];
        for (let round = 0; round < 3; round++) {
          const answerer = await start(
            b,
            `sh -c 'gpiomon -n 1 -r ${CHIP} 1 >/dev/null && gpioset -m time -u 400000 ${CHIP} 0=1' >/dev/null 2>&1`,
          );
          const listener = await start(a, `gpiomon -n 1 -r ${CHIP} 1 >/tmp/answer 2>&1`);
          await rig.waitArmed('b', 1);
          await rig.waitArmed('a', 1);
          const events: ControlEvent[] = [];
          const sub = await rig.control('a').subscribe((e) => events.push(e));
          assert.equal((await a.run(`gpioset -m time -u 1500000 ${CHIP} 0=1`, 30_000)).code, 0);
          const answer = parseGpiomonEvents((await finish(a, listener, '/tmp/answer')).out);
          assert.deepEqual(
            answer.map((e) => `${e.edge}@${e.offset}`),
            ['RISING@1'],
            'A sees the answer',
          );
          await finish(b, answerer, '/dev/null');
          sub.stop();
          const out = events.find((e) => e.event === 'output' && e.line === 0 && e.to === 'high');
          const back = events.find((e) => e.event === 'delivered' && e.line === 1);
          assert.ok(out && back, JSON.stringify(events));
          trips.push(Number(BigInt(back.timeNs) - BigInt(out.timeNs)) / 1e6);
          await sleep(200);
        }
        trips.sort((x, y) => x - y);
        const report = `guest-to-guest round trip (A's output → B's gpiomon → B's gpioset → A's interrupt), QEMU 10 TCG: ${trips.map((x) => x.toFixed(1)).join(', ')} ms (median ${trips[1].toFixed(1)} ms)`;
        t.diagnostic(report);
        console.log(`# ${report}`);
      });
    },
  );

  it('a bouncing button and a clock, seen by gpiomon', { skip, timeout: 180_000 }, async (t) => {
    const rig = await BoardRig.start({
      devices: [{ name: 'dev', lines: 2, names: ['btn', 'clk'], pull: { btn: 'up' } }],
      peripherals: [
        // 5 changes 50 ms apart: slow enough for a TCG guest to re-arm between edges.
        { type: 'button', name: 'btn', line: 'dev:btn', bounce: { transitions: 5, withinMs: 200 } },
        { type: 'clock', name: 'clk', line: 'dev:clk', periodMs: 100 },
      ],
    });
    await rig.diagnose(t, async () => {
      const vm = await rig.boot('dev');
      const mon = await start(vm, `gpiomon -n 5 ${CHIP} 0 >/tmp/btn 2>&1`);
      await rig.waitArmed('dev', 0);
      await rig.control('dev').button('btn', 'press');
      const press = parseGpiomonEvents((await finish(vm, mon, '/tmp/btn')).out);
      // Pulled up, pressed to 0: falling, and the bounce back and forth, ending low.
      assert.deepEqual(
        press.map((e) => e.edge),
        ['FALLING', 'RISING', 'FALLING', 'RISING', 'FALLING'],
      );
      const span = press[4].time - press[0].time;
      assert.ok(span > 0.15 && span < 0.4, `the bounce spans ${span} s`);
      assert.deepEqual(await vm.run(`gpioget ${CHIP} 0`), { out: '0\n', code: 0 });

      const clk = parseGpiomonEvents((await vm.run(`gpiomon -n 8 -r ${CHIP} 1`, 30_000)).out);
      assert.equal(clk.length, 8);
      const gaps = clk.slice(1).map((e, i) => (e.time - clk[i].time) * 1000);
      const mean = ((clk[7].time - clk[0].time) * 1000) / 7;
      assert.ok(mean > 90 && mean < 110, `mean clock period seen by the guest ${mean} ms`);
      for (const g of gaps) assert.ok(g > 40 && g < 160, `clock gaps ${gaps.join(', ')} ms`);
      t.diagnostic(
        `clock 100 ms seen by gpiomon: mean ${mean.toFixed(2)} ms, gaps ${gaps.map((g) => g.toFixed(1)).join(', ')} ms`,
      );
    });
  });
});
