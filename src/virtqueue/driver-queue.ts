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

/**
 * Called by collectEach() once per used chain. `data` is the chain's whole writable area; it is
 * the queue's scratch when small, valid only until the visitor returns.
 */
export type UsedVisitor<T> = (token: T, len: number, data: Uint8Array) => void;

export interface DriverQueueOptions {
  eventIdx: boolean;
  indirect: boolean;
  /**
   * Reserve SLOT_BYTES of guest memory per descriptor when the queue is made: a chain whose
   * buffers fit (each one, or an indirect table with its buffers in its head's slot) is placed
   * there instead of through the allocator, so adding and collecting small requests allocates
   * nothing. Without room for the reservation the queue works without it.
   */
  slots?: boolean;
}

/** Guest bytes reserved per descriptor with `slots`: an 8-byte request with its response, or a two-entry indirect table with both. */
export const SLOT_BYTES = 64;
const SCRATCH_MAX = SLOT_BYTES;

/** What the driver remembers of a chain in flight, kept per head and reused. */
class ChainRecord<T> {
  token: T | undefined = undefined;
  inFlight = false;
  descs: number[] = [];
  descCount = 0;
  /** Allocator blocks (chains that did not fit the slots). */
  blocks: number[] = [];
  blockCount = 0;
  wAddr: number[] = [];
  wLen: number[] = [];
  wCount = 0;
  wTotal = 0;

  reset(): void {
    this.token = undefined;
    this.inFlight = false;
    this.descCount = this.blockCount = this.wCount = this.wTotal = 0;
  }

  addWritable(addr: number, len: number): void {
    this.wAddr[this.wCount] = addr;
    this.wLen[this.wCount] = len;
    this.wCount++;
    this.wTotal += len;
  }
}

/** The driver side of a split virtqueue: places buffers, publishes them, collects used ones. */
export class DriverQueue<T> {
  readonly size: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  /** Free descriptor ids as a stack (pop gives 0, 1, 2... on a fresh queue). */
  private readonly freeStack: Uint16Array;
  private freeTop = 0;
  private readonly chains: Array<ChainRecord<T> | undefined>;
  private inFlightCount = 0;
  private availIdx = 0;
  private kickedAvail = 0;
  private lastUsed = 0;
  /** Reserved slots: guest address of slot 0 and the region bytes holding them (-1: none). */
  private slotAddr = -1;
  private slotBytes: Uint8Array = new Uint8Array(0);
  /** 1 where descriptor i's addr field already holds slot i's address (written once, not per chain). */
  private readonly slotAddrWritten: Uint8Array;
  private readonly scratch: Array<Uint8Array | undefined> = [];

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
    this.freeStack = new Uint16Array(this.size);
    for (let i = this.size - 1; i >= 0; i--) this.freeStack[this.freeTop++] = i;
    this.chains = new Array<ChainRecord<T> | undefined>(this.size);
    this.slotAddrWritten = new Uint8Array(this.size);
    if (opts.slots) this.reserveSlots();
  }

  private reserveSlots(): void {
    const bytes = this.size * SLOT_BYTES;
    let addr: number;
    try {
      addr = this.alloc.alloc(bytes);
    } catch {
      return; // no room: every chain goes through the allocator
    }
    try {
      this.slotBytes = this.mem.view(addr, bytes);
      this.slotAddr = addr;
    } catch {
      this.alloc.release(addr); // spans regions: not usable as one byte array
    }
  }

  /** Descriptor `id` pointing at its own slot, `len` bytes: the address is written only when it changed. */
  private writeSlotDesc(id: number, len: number, flags: number, next: number): void {
    const at = id * DESC_SIZE;
    if (this.slotAddrWritten[id] === 0) {
      const addr = this.slotAddr + id * SLOT_BYTES;
      this.desc.setUint32(at, addr % 0x1_0000_0000, true);
      this.desc.setUint32(at + 4, Math.floor(addr / 0x1_0000_0000), true);
      this.slotAddrWritten[id] = 1;
    }
    this.desc.setUint32(at + 8, len, true);
    this.desc.setUint32(at + 12, flags | (next << 16), true);
  }

  get freeDescriptors(): number {
    return this.freeTop;
  }

  get outstanding(): number {
    return this.inFlightCount;
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
    const need = b.indirect ? 1 : count;
    if (this.freeTop < need)
      throw new VirtqueueError('full', `${need} descriptors wanted, ${this.freeTop} free`);
    const head = this.slotAddr >= 0 && this.fitsSlots(b, count) ? this.placeInSlots(b, count) : this.place(b);
    this.publish(head, this.chains[head] as ChainRecord<T>, token);
  }

  /** Marks a placed chain in flight and makes it available (one avail slot, then avail.idx). */
  private publish(head: number, rec: ChainRecord<T>, token: T): void {
    rec.token = token;
    rec.inFlight = true;
    this.inFlightCount++;
    this.avail.setUint16(4 + 2 * (this.availIdx % this.size), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.avail.setUint16(2, this.availIdx, true);
  }

  /**
   * add() of the commonest chain, one readable buffer then one writable one, direct: with slots
   * reserved and both fitting, placed without building anything.
   */
  addPair(readable: Uint8Array, writable: number, token: T): void {
    const rlen = readable.length;
    if (this.slotAddr < 0 || rlen > SLOT_BYTES || writable > SLOT_BYTES || this.freeTop < 2) {
      this.add({ readable: [readable], writable: [writable] }, token);
      return;
    }
    const bytes = this.slotBytes;
    const head = this.freeStack[--this.freeTop];
    const tail = this.freeStack[--this.freeTop];
    let off = head * SLOT_BYTES;
    for (let k = 0; k < rlen; k++) bytes[off + k] = readable[k];
    off = tail * SLOT_BYTES;
    for (let k = 0; k < writable; k++) bytes[off + k] = 0;
    this.writeSlotDesc(head, rlen, DescFlag.NEXT, tail);
    this.writeSlotDesc(tail, writable, DescFlag.WRITE, 0);
    const rec = this.record(head);
    rec.descs[0] = head;
    rec.descs[1] = tail;
    rec.descCount = 2;
    rec.addWritable(this.slotAddr + off, writable);
    this.publish(head, rec, token);
  }

  private fitsSlots(b: BufferLayout, count: number): boolean {
    if (b.indirect) {
      let total = count * DESC_SIZE;
      for (let i = 0; i < b.readable.length; i++) total += b.readable[i].length;
      for (let i = 0; i < b.writable.length; i++) total += b.writable[i];
      return total <= SLOT_BYTES;
    }
    for (let i = 0; i < b.readable.length; i++) if (b.readable[i].length > SLOT_BYTES) return false;
    for (let i = 0; i < b.writable.length; i++) if (b.writable[i] > SLOT_BYTES) return false;
    return true;
  }

  /** Fast path: every buffer in reserved slots; nothing can fail once the checks in add() passed. */
  private placeInSlots(b: BufferLayout, count: number): number {
    const bytes = this.slotBytes;
    const fill = b.fill ?? 0;
    const nr = b.readable.length;
    if (b.indirect) {
      const head = this.freeStack[--this.freeTop];
      const rec = this.record(head);
      rec.descs[rec.descCount++] = head;
      const tableOff = head * SLOT_BYTES;
      let off = tableOff + count * DESC_SIZE;
      for (let i = 0; i < count; i++) {
        const readable = i < nr;
        const data = readable ? b.readable[i] : null;
        const len = data !== null ? data.length : b.writable[i - nr];
        if (data !== null) for (let k = 0; k < len; k++) bytes[off + k] = data[k];
        else {
          for (let k = 0; k < len; k++) bytes[off + k] = fill;
          rec.addWritable(this.slotAddr + off, len);
        }
        const at = tableOff + i * DESC_SIZE;
        const last = i + 1 === count;
        writeDescBytes(
          bytes,
          at,
          this.slotAddr + off,
          len,
          (readable ? 0 : DescFlag.WRITE) | (last ? 0 : DescFlag.NEXT),
          last ? 0 : i + 1,
        );
        off += len;
      }
      this.writeSlotDesc(head, count * DESC_SIZE, DescFlag.INDIRECT, 0);
      return head;
    }
    const head = this.freeStack[this.freeTop - 1];
    const rec = this.record(head);
    let id = this.freeStack[--this.freeTop];
    for (let i = 0; i < count; i++) {
      rec.descs[rec.descCount++] = id;
      const readable = i < nr;
      const off = id * SLOT_BYTES;
      const addr = this.slotAddr + off;
      let len: number;
      if (readable) {
        const data = b.readable[i];
        len = data.length;
        for (let k = 0; k < len; k++) bytes[off + k] = data[k];
      } else {
        len = b.writable[i - nr];
        for (let k = 0; k < len; k++) bytes[off + k] = fill;
        rec.addWritable(addr, len);
      }
      const last = i + 1 === count;
      const next = last ? 0 : this.freeStack[--this.freeTop];
      this.writeSlotDesc(id, len, (readable ? 0 : DescFlag.WRITE) | (last ? 0 : DescFlag.NEXT), next);
      id = next;
    }
    return head;
  }

  /** General path: buffers from the allocator; everything taken is given back if a step fails. */
  private place(b: BufferLayout): number {
    const segs: Array<{ addr: number; len: number; flags: number }> = [];
    const blocks: number[] = [];
    const writable: Array<[number, number]> = [];
    const descs: number[] = [];
    let head: number;
    try {
      for (const data of b.readable) {
        const addr = this.alloc.alloc(data.length);
        blocks.push(addr);
        this.mem.write(addr, data);
        segs.push({ addr, len: data.length, flags: 0 });
      }
      for (const len of b.writable) {
        const addr = this.alloc.alloc(len);
        blocks.push(addr);
        this.mem.fill(addr, len, b.fill ?? 0); // unlike view(), may span regions
        writable.push([addr, len]);
        segs.push({ addr, len, flags: DescFlag.WRITE });
      }
      if (b.indirect) {
        const table = this.alloc.alloc(segs.length * DESC_SIZE);
        blocks.push(table);
        const view = this.mem.dataView(table, segs.length * DESC_SIZE);
        segs.forEach((s, i) =>
          writeDesc(
            view,
            i,
            s.addr,
            s.len,
            s.flags | (i + 1 < segs.length ? DescFlag.NEXT : 0),
            i + 1 < segs.length ? i + 1 : 0,
          ),
        );
        head = this.freeStack[--this.freeTop];
        descs.push(head);
        writeDesc(this.desc, head, table, segs.length * DESC_SIZE, DescFlag.INDIRECT, 0);
      } else {
        for (let i = 0; i < segs.length; i++) descs.push(this.freeStack[--this.freeTop]);
        segs.forEach((s, i) =>
          writeDesc(
            this.desc,
            descs[i],
            s.addr,
            s.len,
            s.flags | (i + 1 < segs.length ? DescFlag.NEXT : 0),
            descs[i + 1] ?? 0,
          ),
        );
        head = descs[0];
      }
    } catch (e) {
      for (const d of descs) this.freeStack[this.freeTop++] = d;
      for (const a of blocks) this.alloc.release(a);
      throw e;
    }
    const rec = this.record(head);
    for (const d of descs) {
      rec.descs[rec.descCount++] = d;
      this.slotAddrWritten[d] = 0;
    }
    for (const a of blocks) rec.blocks[rec.blockCount++] = a;
    for (const [addr, len] of writable) rec.addWritable(addr, len);
    return head;
  }

  private record(head: number): ChainRecord<T> {
    let rec = this.chains[head];
    if (rec === undefined) this.chains[head] = rec = new ChainRecord<T>();
    else rec.reset();
    return rec;
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
    this.drain((token, len, data) => out.push({ token, len, data }), false);
    return out;
  }

  /**
   * collect() without building anything: `visit` runs for each used chain, in used-ring order,
   * with the chain's descriptors already free (the visitor may add() again). Small writable
   * areas are gathered into scratch bytes, so in steady state this allocates nothing.
   */
  collectEach(visit: UsedVisitor<T>): void {
    this.drain(visit, true);
  }

  private drain(visit: UsedVisitor<T>, scratch: boolean): void {
    for (;;) {
      this.collectInto(visit, scratch);
      if (!this.opts.eventIdx) return;
      // Re-arm, then look again: a chain used before the device saw the new used_event sends no notification.
      this.avail.setUint16(4 + 2 * this.size, this.lastUsed, true);
      memoryFence();
      if (this.lastUsed === this.used.getUint16(2, true)) return;
    }
  }

  private collectInto(visit: UsedVisitor<T>, scratch: boolean): void {
    while (this.lastUsed !== this.used.getUint16(2, true)) {
      const slot = 4 + 8 * (this.lastUsed % this.size);
      const id = this.used.getUint32(slot, true);
      const len = this.used.getUint32(slot + 4, true);
      const rec = id < this.size ? this.chains[id] : undefined;
      if (rec === undefined || !rec.inFlight)
        throw new VirtqueueError('used', `device returned descriptor ${id}, which is not in flight`);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      const total = rec.wTotal;
      let data: Uint8Array;
      if (scratch && total <= SCRATCH_MAX) {
        let s = this.scratch[total];
        if (s === undefined) this.scratch[total] = s = new Uint8Array(total);
        data = s;
      } else data = new Uint8Array(total);
      let off = 0;
      for (let i = 0; i < rec.wCount; i++) {
        this.gather(rec.wAddr[i], data, off, rec.wLen[i]);
        off += rec.wLen[i];
      }
      const token = rec.token as T;
      this.release(rec);
      visit(token, len, data);
    }
  }

  /** Copies from guest memory; reserved slots are read straight from their bytes. */
  private gather(addr: number, out: Uint8Array, at: number, len: number): void {
    const off = addr - this.slotAddr;
    if (this.slotAddr >= 0 && off >= 0 && off + len <= this.slotBytes.length) {
      const bytes = this.slotBytes;
      for (let k = 0; k < len; k++) out[at + k] = bytes[off + k];
    } else this.mem.readInto(addr, out, at, len);
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
    const out: T[] = [];
    for (const rec of this.chains) if (rec?.inFlight) out.push(rec.token as T);
    return out;
  }

  private release(rec: ChainRecord<T>): void {
    for (let i = 0; i < rec.descCount; i++) this.freeStack[this.freeTop++] = rec.descs[i];
    for (let i = 0; i < rec.blockCount; i++) this.alloc.release(rec.blocks[i]);
    rec.reset();
    this.inFlightCount--;
  }
}

/** A descriptor: le64 addr (written as two halves: no BigInt), le32 len, le16 flags, le16 next. */
function writeDesc(view: DataView, i: number, addr: number, len: number, flags: number, next: number): void {
  const at = i * DESC_SIZE;
  view.setUint32(at, addr % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.floor(addr / 0x1_0000_0000), true);
  view.setUint32(at + 8, len, true);
  view.setUint16(at + 12, flags, true);
  view.setUint16(at + 14, next, true);
}

/** writeDesc into plain bytes at byte offset `at` (an indirect table in a reserved slot). */
function writeDescBytes(
  b: Uint8Array,
  at: number,
  addr: number,
  len: number,
  flags: number,
  next: number,
): void {
  const lo = addr % 0x1_0000_0000;
  const hi = Math.floor(addr / 0x1_0000_0000);
  for (let k = 0; k < 4; k++) {
    b[at + k] = (lo >>> (8 * k)) & 0xff;
    b[at + 4 + k] = (hi >>> (8 * k)) & 0xff;
    b[at + 8 + k] = (len >>> (8 * k)) & 0xff;
  }
  b[at + 12] = flags & 0xff;
  b[at + 13] = flags >>> 8;
  b[at + 14] = next & 0xff;
  b[at + 15] = next >>> 8;
}
