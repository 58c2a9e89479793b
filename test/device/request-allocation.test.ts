import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fewestScavenges } from '../steady-state-allocation.ts';
import { test } from 'node:test';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { SimulatedLines } from '../../src/device/simulated-lines.ts';
import { VirtioGpioDevice } from '../../src/device/virtio-gpio-device.ts';
import { Feature, MessageType, bit } from '../../src/protocol/constants.ts';
import type { DescriptorChain } from '../../src/virtqueue/descriptor-chain.ts';
import { DeviceQueue } from '../../src/virtqueue/device-queue.ts';
import { GuestMemory } from '../../src/virtqueue/guest-memory.ts';
import { DescFlag, contiguousLayout } from '../../src/virtqueue/split-ring.ts';

// The requestq hot path allocates nothing per request in steady state: 1 M requests (GET_VALUE,
// SET_VALUE, GET_DIRECTION), 64 per kick, served by the real VirtioGpioDevice over a real
// DeviceQueue, from a hand-written driver that itself allocates nothing (it writes the rings in
// place); the device's event stream and 'line' notifications have no listener and must cost nothing. The serving runs in a child
// with a 1 MB young generation, where each MB allocated costs a scavenge: counting scavenges
// bounds the bytes allocated per request. Heap growth after a full GC is checked too.

const REQUESTS = 1_000_000;
const BATCH = 64;
const LINES = 8;
const SEMI_SPACE_MB = 1;
// Reads, and a write that raises the device's 'line' notification (no listener: it must cost nothing).
const TYPES = [
  MessageType.GET_VALUE,
  MessageType.SET_VALUE,
  MessageType.GET_DIRECTION,
  MessageType.GET_VALUE,
];

interface ServeReport {
  requests: number;
  notifications: number;
  scavenges: number;
  heapGrowthBytes: number;
  seconds: number;
}

async function serveInChild(): Promise<ServeReport> {
  const size = 256;
  const bytes = new Uint8Array(0x10000);
  const layout = contiguousLayout(size, 0);
  const mem = new Uint8Array(bytes.buffer);
  const view = new DataView(bytes.buffer);
  const buffers = 0x8000;
  // Chain k: descriptor 2k = the 8-byte request, 2k+1 = the 2-byte response.
  for (let k = 0; k < BATCH; k++) {
    const req = buffers + 16 * k;
    const d = layout.descAddr + 16 * 2 * k;
    view.setBigUint64(d, BigInt(req), true);
    view.setUint32(d + 8, 8, true);
    view.setUint16(d + 12, DescFlag.NEXT, true);
    view.setUint16(d + 14, 2 * k + 1, true);
    view.setBigUint64(d + 16, BigInt(req + 8), true);
    view.setUint32(d + 24, 2, true);
    view.setUint16(d + 28, DescFlag.WRITE, true);
    view.setUint16(req, TYPES[k % TYPES.length], true);
    view.setUint16(req + 2, k % LINES, true);
  }
  const lines = new SimulatedLines(LINES);
  for (let l = 0; l < LINES; l++) lines.setInput(l, (l & 1) as 0 | 1);
  const device = new VirtioGpioDevice(new GpioDevice<DescriptorChain>(lines));
  device.setFeatures(bit(Feature.VERSION_1) | bit(Feature.RING_EVENT_IDX) | bit(Feature.RING_INDIRECT_DESC));
  let notifications = 0;
  const guest = new GuestMemory([{ guestPhysAddr: 0, bytes }]);
  device.startQueue(
    0,
    new DeviceQueue(guest, layout, { eventIdx: true, indirect: true }),
    () => notifications++,
  );

  let availIdx = 0;
  let usedIdx = 0;
  let bad = 0;
  const serve = (batches: number): void => {
    for (let b = 0; b < batches; b++) {
      for (let k = 0; k < BATCH; k++) {
        view.setUint16(layout.availAddr + 4 + 2 * ((availIdx + k) % size), 2 * k, true);
        mem[buffers + 16 * k + 8] = 0xff; // the device must overwrite status and value
      }
      availIdx = (availIdx + BATCH) & 0xffff;
      // used_event: notify once the first chain of this batch is used (one call per batch).
      view.setUint16(layout.availAddr + 4 + 2 * size, usedIdx, true);
      view.setUint16(layout.availAddr + 2, availIdx, true);
      device.kick(0);
      for (let k = 0; k < BATCH; k++) {
        const slot = layout.usedAddr + 4 + 8 * ((usedIdx + k) % size);
        const head = view.getUint32(slot, true);
        const resp = buffers + 16 * (head / 2) + 8;
        if (head !== 2 * k || view.getUint32(slot + 4, true) !== 2 || mem[resp] !== 0) bad++;
        const expected =
          TYPES[(head / 2) % TYPES.length] === MessageType.GET_VALUE ? ((head / 2) % LINES) & 1 : 0;
        if (mem[resp + 1] !== expected) bad++;
      }
      usedIdx = (usedIdx + BATCH) & 0xffff;
      if (view.getUint16(layout.usedAddr + 2, true) !== usedIdx) bad++;
    }
  };

  serve(2000); // warm-up: the JIT settles, no more feedback allocations
  const best = await fewestScavenges(() => {
    notifications = 0;
    serve(REQUESTS / BATCH);
    return { notifications };
  });
  if (bad > 0) throw new Error(`${bad} wrong replies`);
  return { requests: REQUESTS, ...best };
}

if (process.env.VGPIO_ALLOCATION_CHILD === '1') {
  process.stdout.write(JSON.stringify(await serveInChild()) + '\n');
} else {
  test('1 M requestq requests: no allocation per request, no heap growth, one call per batch', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--expose-gc',
        `--max-semi-space-size=${SEMI_SPACE_MB}`,
        `--min-semi-space-size=${SEMI_SPACE_MB}`,
        fileURLToPath(import.meta.url),
      ],
      { encoding: 'utf8', env: { ...process.env, VGPIO_ALLOCATION_CHILD: '1' }, timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ServeReport;
    process.stdout.write(`# ${JSON.stringify(report)}\n`);
    assert.equal(report.notifications, REQUESTS / BATCH);
    // Each scavenge means about SEMI_SPACE_MB allocated: 2 over 1 M requests is ~2 bytes per request.
    assert.ok(report.scavenges <= 2, `${report.scavenges} scavenges over ${REQUESTS} requests`);
    assert.ok(report.heapGrowthBytes < 256 * 1024, `heap grew ${report.heapGrowthBytes} bytes`);
  });
}
