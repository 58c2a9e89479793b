import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runConformance, type RuleResult } from '../../src/conformance/conformance-runner.ts';
import { HarnessError } from '../../src/conformance/harness-error.ts';
import type { InputDriver } from '../../src/conformance/input-driver.ts';
import { vhostUserTarget } from '../../src/conformance/vhost-user-target.ts';
import { GpioDevice, type EventSink, type GpioReply } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { IrqStatus, IrqType, MessageType } from '../../src/protocol/constants.ts';
import type { GpioRequest } from '../../src/protocol/messages.ts';
import { VhostUserServer } from '../../src/transports/vhost-user/server.ts';
import type { DescriptorChain } from '../../src/virtqueue/descriptor-chain.ts';
import type { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { RecreatingServer } from './recreating-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'vgpio-conf-'));
const servers: Array<{ close(): void }> = [];
after(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A GpioDevice whose eventq hand-backs a test can tamper with. */
class TamperedGpio extends GpioDevice<DescriptorChain> {
  realSink: EventSink<DescriptorChain> | null = null;
  /** Called for every hand-back; return false to swallow it. */
  filter: (token: DescriptorChain, status: IrqStatus, line: number) => boolean = () => true;

  override setEventSink(sink: EventSink<DescriptorChain> | null): void {
    this.realSink = sink;
    super.setEventSink(sink && ((t, s, l) => (this.filter(t, s, l) ? sink(t, s, l) : undefined)));
  }
}

interface Backend {
  socket: string;
  lines: SimulatedLines;
  gpio: TamperedGpio;
  virtio: VirtioGpioDevice;
  /** Set when served by a RecreatingServer. */
  recreating: RecreatingServer | null;
}

let n = 0;
/** A device on a fresh socket, served by vgpio's server or (`recreating`) rust-vmm's way. */
function serve(patch?: (b: Backend) => void, o: { recreating?: boolean } = {}): Backend {
  const socket = join(dir, `dev${n++}.sock`);
  const lines = new SimulatedLines(4, ['a', 'b', 'c', 'd']);
  const gpio = new TamperedGpio(lines);
  const virtio = new VirtioGpioDevice(gpio);
  const b: Backend = { socket, lines, gpio, virtio, recreating: null };
  patch?.(b);
  if (o.recreating) {
    b.recreating = new RecreatingServer(socket, virtio);
    servers.push(b.recreating);
  } else servers.push(new VhostUserServer(virtio, { socketPath: socket, log: silentLogger }));
  return b;
}

const driverFor = (lines: SimulatedLines): InputDriver => ({
  description: 'in-process',
  set: async (line, value) => lines.setInput(line, value),
  close: () => {},
});

async function check(
  b: Backend,
  drive: InputDriver = driverFor(b.lines),
  only?: string[],
): Promise<Map<string, RuleResult>> {
  const results = await runConformance({
    connect: vhostUserTarget(b.socket, { replyMs: 2000 }),
    drive,
    replyMs: 500,
    quietMs: 100,
    only,
  });
  return new Map(results.map((r) => [r.id, r]));
}

const withOutcome = (m: Map<string, RuleResult>, outcome: RuleResult['outcome']) =>
  [...m.values()].filter((r) => r.outcome === outcome).map((r) => r.id);
const failed = (m: Map<string, RuleResult>) => withOutcome(m, 'FAIL');
const rows = (m: Map<string, RuleResult>) => [...m.values()].map((r) => `${r.id}: ${r.outcome} ${r.detail}`);

describe('conformance suite', () => {
  test('vgpio itself: every rule PASS, none skipped', async () => {
    const m = await check(serve());
    assert.deepEqual(failed(m), []);
    assert.deepEqual(
      [...m.values()].filter((r) => r.outcome !== 'PASS').map((r) => `${r.id}: ${r.outcome} ${r.detail}`),
      [],
    );
    assert.ok(m.size >= 28);
  });

  test('a back-end that re-creates its socket after each disconnect gets the same table', async () => {
    const plain = await check(serve());
    const b = serve(undefined, { recreating: true });
    const recreated = await check(b);
    assert.deepEqual(rows(recreated), rows(plain));
    // Every rule (and the feature probe) had its own connection, each one waited for a new socket.
    assert.ok(b.recreating && b.recreating.connections > plain.size, `${b.recreating?.connections}`);
    // ... and found it only after the server bound it again (the last re-bind may still be pending).
    assert.ok(b.recreating.rebinds >= b.recreating.connections - 1);
  });

  test('a used length shorter than the response WARNs (the ring allows it; Linux does not)', async () => {
    const m = await check(
      serve(({ virtio }) => {
        const start = virtio.startQueue.bind(virtio);
        virtio.startQueue = (index: number, queue: DeviceQueue, notify: () => void) => {
          if (index === 0) {
            const push = queue.push.bind(queue);
            queue.push = (head: number, len: number) => push(head, len === 2 ? 1 : len);
          }
          start(index, queue, notify);
        };
      }),
    );
    assert.equal(m.get('response.fields')?.outcome, 'WARN');
    assert.match(m.get('response.fields')?.detail ?? '', /used length 1, expected 2 .*Linux/);
    assert.deepEqual(failed(m), []);
  });

  test('VALID for a buffer whose interrupt is not enabled FAILs the SHOULD rule irq.unmask-disabled', async () => {
    const m = await check(
      serve(({ gpio }) => {
        const queue = gpio.queueEventBuffer.bind(gpio);
        gpio.queueEventBuffer = (line: number | null, token: DescriptorChain) => {
          if (line !== null && gpio.snapshot()[line].irqType === IrqType.NONE)
            return gpio.realSink?.(token, IrqStatus.VALID, line);
          queue(line, token);
        };
      }),
    );
    assert.equal(m.get('irq.unmask-disabled')?.strength, 'SHOULD');
    assert.equal(m.get('irq.unmask-disabled')?.outcome, 'FAIL');
    assert.match(m.get('irq.unmask-disabled')?.detail ?? '', /VALID .*§5\.18\.7\.3/);
  });

  test('names: duplicates FAIL (a MUST), non-ASCII bytes WARN (descriptive text)', async () => {
    // The block is "a\0b\0c\0d\0".
    const dup = await check(
      serve(({ gpio }) => gpio.namesBlock.set([0x61], 2)),
      undefined,
      ['names'],
    );
    assert.equal(dup.get('names.block')?.outcome, 'FAIL');
    assert.match(dup.get('names.block')?.detail ?? '', /not unique/);
    const latin = await check(
      serve(({ gpio }) => gpio.namesBlock.set([0xe9], 0)),
      undefined,
      ['names'],
    );
    assert.equal(latin.get('names.block')?.outcome, 'WARN');
    assert.match(latin.get('names.block')?.detail ?? '', /not 7-bit ASCII/);
  });

  test('a device that keeps the buffer on disable is caught by irq.disable-returns', async () => {
    const m = await check(
      serve(({ gpio }) => {
        gpio.filter = (_t, status) => status !== IrqStatus.INVALID;
      }),
    );
    assert.equal(m.get('irq.disable-returns')?.outcome, 'FAIL');
    assert.match(m.get('irq.disable-returns')?.detail ?? '', /not returned/);
    assert.equal(m.get('irq.edge')?.outcome, 'PASS');
  });

  test('a device that delivers VALID while disabled is caught by irq.no-valid-disabled', async () => {
    const m = await check(
      serve(({ gpio, lines }) => {
        const kept = new Map<number, DescriptorChain>();
        // On disable, keep the buffer instead of returning it, and fire it on the next level change.
        gpio.filter = (t, status, line) => {
          if (status !== IrqStatus.INVALID) return true;
          kept.set(line, t);
          return false;
        };
        lines.onChange((c) => {
          const t = kept.get(c.line);
          if (t === undefined) return;
          kept.delete(c.line);
          gpio.realSink?.(t, IrqStatus.VALID, c.line);
        });
      }),
    );
    assert.equal(m.get('irq.no-valid-disabled')?.outcome, 'FAIL');
    assert.match(m.get('irq.no-valid-disabled')?.detail ?? '', /VALID/);
  });

  test('a device that answers unknown types OK gets a WARN from type.unknown only (no device MUST)', async () => {
    const m = await check(
      serve(({ gpio }) => {
        const handle = gpio.handle.bind(gpio);
        gpio.handle = (req: GpioRequest): GpioReply =>
          Object.values(MessageType).includes(req.type as MessageType)
            ? handle(req)
            : { status: 0, value: 0 };
      }),
    );
    assert.deepEqual(failed(m), []);
    assert.deepEqual(withOutcome(m, 'WARN'), ['type.unknown']);
  });

  test('a device that latches levels is caught by irq.level-not-latched', async () => {
    const m = await check(
      serve(({ gpio, lines }) => {
        // Remember a level that was active while masked and report it at the next unmask.
        let pending = -1;
        lines.onChange((c) => {
          const s = gpio.snapshot()[c.line];
          if (s.irqType === IrqType.LEVEL_HIGH && c.level === 1 && !s.armed) pending = c.line;
        });
        const queue = gpio.queueEventBuffer.bind(gpio);
        gpio.queueEventBuffer = (line: number | null, token: DescriptorChain) => {
          if (line !== null && line === pending && gpio.snapshot()[line].irqType === IrqType.LEVEL_HIGH) {
            pending = -1;
            gpio.realSink?.(token, IrqStatus.VALID, line);
            return;
          }
          queue(line, token);
        };
      }),
    );
    assert.equal(m.get('irq.level-not-latched')?.outcome, 'FAIL');
  });

  test("a back-end with rust-vmm vhost-device-gpio's documented behaviour gets a meaningful table", async () => {
    const b = serve(
      ({ virtio, gpio, lines }) => {
        // Exactly two descriptors per request, or ERR.
        let badLayout = false;
        const start = virtio.startQueue.bind(virtio);
        virtio.startQueue = (index: number, queue: DeviceQueue, notify: () => void) => {
          if (index === 0) {
            // The requestq is served through the queue's reusable chain (popTransient).
            const pop = queue.popTransient.bind(queue);
            queue.popTransient = () => {
              const c = pop();
              badLayout = c !== null && (c.readable.length !== 1 || c.writable.length !== 1);
              return c;
            };
          }
          start(index, queue, notify);
        };
        const valueSet = new Set<number>();
        let disabling = false;
        const kept = new Map<number, DescriptorChain>();
        const err: GpioReply = { status: 1, value: 0 };
        const handle = gpio.handle.bind(gpio);
        gpio.handle = (req: GpioRequest): GpioReply => {
          if (badLayout) return err;
          const line = gpio.snapshot()[req.gpio];
          switch (req.type) {
            case MessageType.SET_VALUE:
              valueSet.add(req.gpio);
              break;
            case MessageType.SET_DIRECTION:
              if (req.value === 1 && !valueSet.has(req.gpio)) return err; // OUT needs a SET_VALUE first
              if (req.value === 0) valueSet.delete(req.gpio);
              break;
            case MessageType.GET_VALUE:
              if (line?.direction === 0) return err;
              break;
            case MessageType.SET_IRQ_TYPE:
              if (req.value === IrqType.LEVEL_HIGH || req.value === IrqType.LEVEL_LOW) return err; // edge only
              if (line && req.value !== IrqType.NONE && line.irqType === req.value) return err; // same type twice
              if (req.value === IrqType.NONE) {
                disabling = true;
                try {
                  return handle(req);
                } finally {
                  disabling = false;
                }
              }
          }
          return handle(req);
        };
        // Disable does not return the armed buffer; it comes back INVALID after the next edge.
        gpio.filter = (t, status, l) => {
          if (!disabling || status !== IrqStatus.INVALID) return true;
          kept.set(l, t);
          return false;
        };
        lines.onChange((c) => {
          const t = kept.get(c.line);
          if (t === undefined) return;
          kept.delete(c.line);
          gpio.realSink?.(t, IrqStatus.INVALID, c.line);
        });
      },
      { recreating: true },
    );
    const m = await check(b);
    assert.deepEqual(failed(m).sort(), [
      'irq.disable-returns',
      'layout.bytewise',
      'layout.indirect',
      'layout.split',
    ]);
    assert.equal(m.get('irq.level')?.outcome, 'SKIP');
    assert.equal(m.get('irq.level-not-latched')?.outcome, 'SKIP');
    assert.equal(m.get('set-direction.out-first')?.detail, 'refused');
    assert.equal(m.get('irq.types')?.detail, 'accepts EDGE_RISING, EDGE_FALLING, EDGE_BOTH');
    assert.equal(m.get('irq.edge')?.outcome, 'PASS');
    assert.equal(m.get('irq.edge-latched')?.outcome, 'PASS');
    assert.ok(![...m.values()].some((r) => /connect/.test(r.detail)), rows(m).join('\n'));
  });

  test('an input driver that fails stops the run with a HarnessError, not a FAIL', async () => {
    const b = serve();
    const broken: InputDriver = {
      description: 'broken',
      set: async () => {
        throw new HarnessError('drive command "false" exited 1');
      },
      close: () => {},
    };
    const e = await check(b, broken).then(
      () => assert.fail('the run completed'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof HarnessError);
    assert.equal(e.rule, 'direction-none.reset'); // the first rule that drives an input
    assert.deepEqual(
      e.results.map((r) => r.id),
      ['config.fields', 'names.block', 'response.fields', 'gpio.range', 'type.unknown', 'value.range']
        .concat(['layout.split', 'layout.bytewise', 'layout.indirect', 'set-value.before-out'])
        .concat(['set-value.on-output', 'set-direction.out-first']),
    );
    assert.ok(e.results.every((r) => r.outcome === 'PASS'));
  });

  test('a socket nobody listens on is a HarnessError after the wait', async () => {
    const connect = vhostUserTarget(join(dir, 'nobody.sock'), { replyMs: 500, waitMs: 150 });
    const t0 = Date.now();
    await assert.rejects(
      runConformance({ connect, drive: null }),
      (e: unknown) =>
        e instanceof HarnessError &&
        /not listening at .*nobody\.sock within 150 ms: .*ENOENT/.test(e.message),
    );
    assert.ok(Date.now() - t0 >= 150);
  });
});
