import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runConformance, type RuleResult } from '../../src/conformance/conformance-runner.ts';
import type { InputDriver } from '../../src/conformance/input-driver.ts';
import { GpioDevice, type EventSink, type GpioReply } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { IrqStatus, IrqType, MessageType, VIRTIO_ID_GPIO } from '../../src/protocol/constants.ts';
import type { GpioRequest } from '../../src/protocol/messages.ts';
import { VhostUserFrontend } from '../../src/transports/vhost-user/frontend.ts';
import { VhostUserServer } from '../../src/transports/vhost-user/server.ts';
import type { DescriptorChain } from '../../src/virtqueue/descriptor-chain.ts';
import type { DeviceQueue } from '../../src/virtqueue/device-queue.ts';

const dir = mkdtempSync(join(tmpdir(), 'vgpio-conf-'));
const servers: VhostUserServer[] = [];
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
}

let n = 0;
function serve(patch?: (b: Backend) => void): Backend {
  const socket = join(dir, `dev${n++}.sock`);
  const lines = new SimulatedLines(4, ['a', 'b', 'c', 'd']);
  const gpio = new TamperedGpio(lines);
  const virtio = new VirtioGpioDevice(gpio);
  const b = { socket, lines, gpio, virtio };
  patch?.(b);
  servers.push(new VhostUserServer(virtio, { socketPath: socket, log: silentLogger }));
  return b;
}

const driverFor = (lines: SimulatedLines): InputDriver => ({
  description: 'in-process',
  set: async (line, value) => lines.setInput(line, value),
  close: () => {},
});

async function check(b: Backend): Promise<Map<string, RuleResult>> {
  const results = await runConformance({
    connect: () => VhostUserFrontend.connect(b.socket, VIRTIO_ID_GPIO, { timeoutMs: 2000 }),
    drive: driverFor(b.lines),
    replyMs: 500,
    quietMs: 100,
  });
  return new Map(results.map((r) => [r.id, r]));
}

const failed = (m: Map<string, RuleResult>) =>
  [...m.values()].filter((r) => r.outcome === 'FAIL').map((r) => r.id);

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

  test('wrong used length on requestq responses is caught by response.fields', async () => {
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
    assert.equal(m.get('response.fields')?.outcome, 'FAIL');
    assert.match(m.get('response.fields')?.detail ?? '', /used length 1, expected 2/);
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

  test('a device that answers unknown types OK is caught by type.unknown only', async () => {
    const m = await check(
      serve(({ gpio }) => {
        const handle = gpio.handle.bind(gpio);
        gpio.handle = (req: GpioRequest): GpioReply =>
          Object.values(MessageType).includes(req.type as MessageType)
            ? handle(req)
            : { status: 0, value: 0 };
      }),
    );
    assert.deepEqual(failed(m), ['type.unknown']);
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
    const b = serve(({ virtio, gpio, lines }) => {
      // Exactly two descriptors per request, or ERR.
      let badLayout = false;
      const start = virtio.startQueue.bind(virtio);
      virtio.startQueue = (index: number, queue: DeviceQueue, notify: () => void) => {
        if (index === 0) {
          const pop = queue.pop.bind(queue);
          queue.pop = () => {
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
    });
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
  });
});
