// Shared helpers for the virtqueue tests: guest memory with guard bytes around every region, and a
// hand-written "driver" that puts arbitrary (also malformed) descriptors and avail entries in memory.
import assert from 'node:assert/strict';
import { GuestMemory } from '../../src/virtqueue/guest-memory.ts';
import { DESC_SIZE, type RingLayout } from '../../src/virtqueue/split-ring.ts';
import { VirtqueueError, type VirtqueueErrorKind } from '../../src/virtqueue/virtqueue-error.ts';
import type { DeviceQueue } from '../../src/virtqueue/device-queue.ts';

export const GUARD = 0xa5;

export interface RegionSpec {
  gpa: number;
  len: number;
}

interface Window {
  gpa: number;
  off: number;
  len: number;
}

export interface Changes {
  /** Guest-physical addresses whose byte changed. */
  gpas: number[];
  /** Backing offsets of guard bytes (outside every region) that changed. */
  guards: number[];
}

/**
 * Guest memory whose regions are windows into one backing buffer, each surrounded by guard bytes
 * (GUARD). Anything that writes past a region's view shows up as a damaged guard.
 */
export class GuardedMemory {
  readonly mem: GuestMemory;
  readonly backing: Uint8Array;
  private readonly windows: Window[] = [];

  constructor(specs: readonly RegionSpec[], guard = 64) {
    const total = specs.reduce((n, s) => n + s.len + guard, guard);
    this.backing = new Uint8Array(total).fill(GUARD);
    let off = guard;
    for (const s of specs) {
      this.windows.push({ gpa: s.gpa, off, len: s.len });
      this.backing.fill(0, off, off + s.len);
      off += s.len + guard;
    }
    this.mem = new GuestMemory(
      this.windows.map((w) => ({ guestPhysAddr: w.gpa, bytes: this.backing.subarray(w.off, w.off + w.len) })),
    );
  }

  snapshot(): Uint8Array {
    return this.backing.slice();
  }

  /** Where the backing differs from a snapshot, as guest addresses and guard offsets. */
  changedSince(snap: Uint8Array): Changes {
    const out: Changes = { gpas: [], guards: [] };
    for (let i = 0; i < snap.length; i++) {
      if (snap[i] === this.backing[i]) continue;
      const w = this.windows.find((x) => i >= x.off && i < x.off + x.len);
      if (w) out.gpas.push(w.gpa + i - w.off);
      else out.guards.push(i);
    }
    return out;
  }

  /** Offsets of guard bytes that no longer hold GUARD. */
  damagedGuards(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.backing.length; i++) {
      const inWindow = this.windows.some((w) => i >= w.off && i < w.off + w.len);
      if (!inWindow && this.backing[i] !== GUARD) out.push(i);
    }
    return out;
  }
}

export interface Desc {
  addr: number | bigint;
  len: number;
  flags?: number;
  next?: number;
}

/** Writes descriptor i of the table at `table` (guest address). */
export function writeDescAt(mem: GuestMemory, table: number, i: number, d: Desc): void {
  const v = mem.dataView(table + i * DESC_SIZE, DESC_SIZE);
  v.setBigUint64(0, BigInt(d.addr), true);
  v.setUint32(8, d.len, true);
  v.setUint16(12, d.flags ?? 0, true);
  v.setUint16(14, d.next ?? 0, true);
}

export function readDescAt(mem: GuestMemory, table: number, i: number): Required<Desc> {
  const v = mem.dataView(table + i * DESC_SIZE, DESC_SIZE);
  return {
    addr: Number(v.getBigUint64(0, true)),
    len: v.getUint32(8, true),
    flags: v.getUint16(12, true),
    next: v.getUint16(14, true),
  };
}

/** The other side of a ring, written field by field (to simulate a driver, or inspect the device). */
export class RingPeer {
  constructor(
    readonly mem: GuestMemory,
    readonly layout: RingLayout,
  ) {}

  protected get avail(): DataView {
    return this.mem.dataView(this.layout.availAddr, 6 + 2 * this.layout.size);
  }

  private get used(): DataView {
    return this.mem.dataView(this.layout.usedAddr, 6 + 8 * this.layout.size);
  }

  desc(i: number, d: Desc): void {
    writeDescAt(this.mem, this.layout.descAddr, i, d);
  }

  readDesc(i: number): Required<Desc> {
    return readDescAt(this.mem, this.layout.descAddr, i);
  }

  /** Puts heads in the avail ring at the current avail idx and advances it. */
  offer(...heads: number[]): void {
    for (const h of heads) {
      const idx = this.availIdx;
      this.avail.setUint16(4 + 2 * (idx % this.layout.size), h, true);
      this.availIdx = (idx + 1) & 0xffff;
    }
  }

  availEntry(slot: number): number {
    return this.avail.getUint16(4 + 2 * slot, true);
  }

  get availFlags(): number {
    return this.avail.getUint16(0, true);
  }
  set availFlags(v: number) {
    this.avail.setUint16(0, v, true);
  }
  get availIdx(): number {
    return this.avail.getUint16(2, true);
  }
  set availIdx(v: number) {
    this.avail.setUint16(2, v, true);
  }
  get usedEvent(): number {
    return this.avail.getUint16(4 + 2 * this.layout.size, true);
  }
  set usedEvent(v: number) {
    this.avail.setUint16(4 + 2 * this.layout.size, v, true);
  }
  get usedFlags(): number {
    return this.used.getUint16(0, true);
  }
  set usedFlags(v: number) {
    this.used.setUint16(0, v, true);
  }
  get usedIdx(): number {
    return this.used.getUint16(2, true);
  }
  set usedIdx(v: number) {
    this.used.setUint16(2, v, true);
  }
  get availEvent(): number {
    return this.used.getUint16(4 + 8 * this.layout.size, true);
  }
  set availEvent(v: number) {
    this.used.setUint16(4 + 8 * this.layout.size, v, true);
  }

  /** Used ring element at slot (not index). */
  usedElem(slot: number): { id: number; len: number } {
    const at = 4 + 8 * slot;
    return { id: this.used.getUint32(at, true), len: this.used.getUint32(at + 4, true) };
  }

  setUsedElem(slot: number, id: number, len: number): void {
    const at = 4 + 8 * slot;
    this.used.setUint32(at, id, true);
    this.used.setUint32(at + 4, len, true);
  }
}

/** Asserts that `fn` throws a VirtqueueError of `kind` and returns it. */
export function expectVirtqueueError(fn: () => unknown, kind: VirtqueueErrorKind): VirtqueueError {
  let caught: unknown = undefined;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VirtqueueError, `expected VirtqueueError(${kind}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  assert.equal(caught.name, 'VirtqueueError');
  return caught;
}

/**
 * The next pop() must fail with `kind`: the queue is then broken with that very error, every later
 * pop/pending/push rethrows it, needsNotify is false, the avail position did not move and not one
 * byte of memory (guest or guard) changed.
 */
export function expectPopBreaks(q: DeviceQueue, g: GuardedMemory, kind: VirtqueueErrorKind): VirtqueueError {
  const snap = g.snapshot();
  const lastAvail = q.lastAvailIndex;
  const usedIndex = q.usedIndex;
  assert.equal(q.broken, null);
  const err = expectVirtqueueError(() => q.pop(), kind);
  assert.equal(q.broken, err);
  assert.throws(
    () => q.pop(),
    (e) => e === err,
  );
  assert.throws(
    () => q.pop(),
    (e) => e === err,
  );
  assert.throws(
    () => q.pending(),
    (e) => e === err,
  );
  assert.throws(
    () => q.push(0, 0),
    (e) => e === err,
  );
  assert.equal(q.needsNotify(), false);
  assert.equal(q.lastAvailIndex, lastAvail);
  assert.equal(q.usedIndex, usedIndex);
  assert.deepEqual(g.changedSince(snap), { gpas: [], guards: [] });
  return err;
}

/** Bytes 0, 1, 2, ... n-1 (mod 256) offset by `seed`. */
export const pattern = (n: number, seed = 0): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff);
