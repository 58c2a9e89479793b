import type { GuestAllocator } from './guest-allocator.ts';
import type { GuestMemory } from './guest-memory.ts';
import { DESC_SIZE, DescFlag, UsedFlag, memoryFence, needEvent, type RingLayout } from './split-ring.ts';
import { ringViews } from './ring-views.ts';
import { VirtqueueError } from './virtqueue-error.ts';

/** What to place on the ring: one descriptor per readable buffer and per writable size. */
export interface BufferLayout {
  readable: readonly Uint8Array[];
  writable: readonly number[];
  /** Put the descriptors in an indirect table (needs INDIRECT_DESC). */
  indirect?: boolean;
  /** Byte the writable buffers are filled with before they are offered (default 0). */
  fill?: number;
}

export interface UsedBuffer<T> {
  token: T;
  /** Used length the device reported. */
  len: number;
  /** The whole writable area, gathered in order (check `len` before trusting it). */
  data: Uint8Array;
}

interface Outstanding<T> {
  token: T;
  descriptors: number[];
  buffers: number[];
  writable: Array<{ addr: number; len: number }>;
}

export interface DriverQueueOptions {
  eventIdx: boolean;
  indirect: boolean;
}

/** The driver side of a split virtqueue: places buffers, publishes them, collects used ones. */
export class DriverQueue<T> {
  readonly size: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  private readonly freeDesc: number[] = [];
  private readonly inFlight = new Map<number, Outstanding<T>>();
  private availIdx = 0;
  private kickedAvail = 0;
  private lastUsed = 0;

  constructor(
    private readonly mem: GuestMemory,
    readonly layout: RingLayout,
    private readonly alloc: GuestAllocator,
    private readonly opts: DriverQueueOptions,
  ) {
    ({ desc: this.desc, avail: this.avail, used: this.used } = ringViews(mem, layout));
    this.size = layout.size;
    for (const v of [this.desc, this.avail, this.used])
      new Uint8Array(v.buffer, v.byteOffset, v.byteLength).fill(0);
    for (let i = this.size - 1; i >= 0; i--) this.freeDesc.push(i);
  }

  get freeDescriptors(): number {
    return this.freeDesc.length;
  }

  get outstanding(): number {
    return this.inFlight.size;
  }

  /** Descriptors an add() of this layout takes from the ring. */
  descriptorsFor(b: BufferLayout): number {
    return b.indirect ? 1 : b.readable.length + b.writable.length;
  }

  /** Places a chain and publishes it in the avail ring. Throws VirtqueueError('full') if it does not fit. */
  add(b: BufferLayout, token: T): void {
    const count = b.readable.length + b.writable.length;
    if (count === 0) throw new RangeError('a chain needs at least one buffer');
    if (b.indirect && !this.opts.indirect)
      throw new VirtqueueError('indirect', 'INDIRECT_DESC not negotiated');
    if (this.freeDesc.length < this.descriptorsFor(b))
      throw new VirtqueueError(
        'full',
        `${this.descriptorsFor(b)} descriptors wanted, ${this.freeDesc.length} free`,
      );

    const entry: Outstanding<T> = { token, descriptors: [], buffers: [], writable: [] };
    const segs: Array<{ addr: number; len: number; flags: number }> = [];
    try {
      for (const data of b.readable) {
        const addr = this.alloc.alloc(data.length);
        entry.buffers.push(addr);
        this.mem.write(addr, data);
        segs.push({ addr, len: data.length, flags: 0 });
      }
      for (const len of b.writable) {
        const addr = this.alloc.alloc(len);
        entry.buffers.push(addr);
        this.mem.fill(addr, len, b.fill ?? 0); // unlike view(), may span regions
        entry.writable.push({ addr, len });
        segs.push({ addr, len, flags: DescFlag.WRITE });
      }
      let head: number;
      if (b.indirect) {
        const table = this.alloc.alloc(segs.length * DESC_SIZE);
        entry.buffers.push(table);
        const view = this.mem.dataView(table, segs.length * DESC_SIZE);
        segs.forEach((s, i) =>
          writeDesc(view, i, s.addr, s.len, s.flags, i + 1 < segs.length ? i + 1 : null),
        );
        head = this.takeDesc(entry);
        writeDesc(this.desc, head, table, segs.length * DESC_SIZE, DescFlag.INDIRECT, null);
      } else {
        const ids = segs.map(() => this.takeDesc(entry));
        segs.forEach((s, i) => writeDesc(this.desc, ids[i], s.addr, s.len, s.flags, ids[i + 1] ?? null));
        head = ids[0];
      }
      this.inFlight.set(head, entry);
      this.avail.setUint16(4 + 2 * (this.availIdx % this.size), head, true);
      this.availIdx = (this.availIdx + 1) & 0xffff;
      this.avail.setUint16(2, this.availIdx, true);
    } catch (e) {
      this.releaseEntry(entry);
      throw e;
    }
  }

  /** After one or more add()s: must the device be notified? */
  kickNeeded(): boolean {
    const old = this.kickedAvail;
    this.kickedAvail = this.availIdx;
    if (old === this.availIdx) return false;
    memoryFence(); // avail.idx is published before the device's avail_event / flags are read
    if (!this.opts.eventIdx) return (this.used.getUint16(0, true) & UsedFlag.NO_NOTIFY) === 0;
    return needEvent(this.used.getUint16(4 + 8 * this.size, true), this.availIdx, old);
  }

  /** Collects every used chain; re-arms the used_event so the next one notifies. */
  collect(): UsedBuffer<T>[] {
    const out: UsedBuffer<T>[] = [];
    for (;;) {
      this.collectInto(out);
      if (!this.opts.eventIdx) return out;
      // Re-arm, then look again: a chain used before the device saw the new used_event sends no notification.
      this.avail.setUint16(4 + 2 * this.size, this.lastUsed, true);
      memoryFence();
      if (this.lastUsed === this.used.getUint16(2, true)) return out;
    }
  }

  private collectInto(out: UsedBuffer<T>[]): void {
    while (this.lastUsed !== this.used.getUint16(2, true)) {
      const slot = 4 + 8 * (this.lastUsed % this.size);
      const id = this.used.getUint32(slot, true);
      const len = this.used.getUint32(slot + 4, true);
      const entry = this.inFlight.get(id);
      if (!entry)
        throw new VirtqueueError('used', `device returned descriptor ${id}, which is not in flight`);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      let total = 0;
      for (const w of entry.writable) total += w.len;
      const data = new Uint8Array(total);
      let off = 0;
      for (const w of entry.writable) {
        this.mem.readInto(w.addr, data, off, w.len);
        off += w.len;
      }
      this.inFlight.delete(id);
      this.releaseEntry(entry);
      out.push({ token: entry.token, len, data });
    }
  }

  /** The used ring's idx as the device last wrote it. */
  get deviceUsedIndex(): number {
    return this.used.getUint16(2, true);
  }

  /** Chains collected so far (the driver's used index). */
  get collectedIndex(): number {
    return this.lastUsed;
  }

  /** EVENT_IDX: ask the device to notify only once its used idx passes `idx` (until the next collect). */
  setUsedEvent(idx: number): void {
    this.avail.setUint16(4 + 2 * this.size, idx & 0xffff, true);
  }

  /** Tokens of chains the device still holds. */
  tokens(): T[] {
    return [...this.inFlight.values()].map((e) => e.token);
  }

  private takeDesc(entry: Outstanding<T>): number {
    const d = this.freeDesc.pop() as number;
    entry.descriptors.push(d);
    return d;
  }

  private releaseEntry(entry: Outstanding<T>): void {
    for (const d of entry.descriptors) this.freeDesc.push(d);
    for (const a of entry.buffers) this.alloc.release(a);
    entry.descriptors = [];
    entry.buffers = [];
  }
}

function writeDesc(
  view: DataView,
  i: number,
  addr: number,
  len: number,
  flags: number,
  next: number | null,
): void {
  const at = i * DESC_SIZE;
  view.setBigUint64(at, BigInt(addr), true);
  view.setUint32(at + 8, len, true);
  view.setUint16(at + 12, flags | (next === null ? 0 : DescFlag.NEXT), true);
  view.setUint16(at + 14, next ?? 0, true);
}
