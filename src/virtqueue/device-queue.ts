import { DescriptorChain } from './descriptor-chain.ts';
import type { GuestMemory } from './guest-memory.ts';
import {
  AvailFlag,
  DESC_SIZE,
  DescFlag,
  UsedFlag,
  memoryFence,
  needEvent,
  type RingLayout,
} from './split-ring.ts';
import { ringViews } from './ring-views.ts';
import { VirtqueueError } from './virtqueue-error.ts';

export interface DeviceQueueOptions {
  eventIdx: boolean;
  indirect: boolean;
  /** Next avail index to process (vhost-user SET_VRING_BASE). */
  nextAvail?: number;
  /** Next used index to write; defaults to the used idx found in the ring. */
  nextUsed?: number;
}

/**
 * The device side of a split virtqueue. Every descriptor is read once and validated before use;
 * a malformed ring throws VirtqueueError and leaves the queue `broken` (needs reset).
 */
export class DeviceQueue {
  readonly size: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  private nextAvail: number;
  /** avail.idx when last read: chains up to it are popped without reading it again. */
  private availIdx: number;
  private nextUsed: number;
  private signalledUsed: number;
  private signalledValid = false;
  /** Kicks suppressed (busy polling): avail_event is left where it was. */
  private kicksSuppressed = false;
  /** The chain popTransient() refills. */
  private readonly transient: DescriptorChain;
  broken: VirtqueueError | null = null;

  constructor(
    private readonly mem: GuestMemory,
    layout: RingLayout,
    private readonly opts: DeviceQueueOptions,
  ) {
    ({ desc: this.desc, avail: this.avail, used: this.used } = ringViews(mem, layout));
    this.size = layout.size;
    this.nextAvail = (opts.nextAvail ?? 0) & 0xffff;
    this.availIdx = this.nextAvail;
    this.nextUsed = (opts.nextUsed ?? this.used.getUint16(2, true)) & 0xffff;
    this.signalledUsed = this.nextUsed;
    this.transient = new DescriptorChain(mem);
  }

  /** Index of the next avail entry to process (vhost-user GET_VRING_BASE). */
  get lastAvailIndex(): number {
    return this.nextAvail;
  }

  get usedIndex(): number {
    return this.nextUsed;
  }

  /** Number of chains the driver has made available and we have not popped. */
  pending(): number {
    this.check();
    memoryFence(); // our avail_event store must be visible before we read avail.idx again
    return this.readAvailIdx();
  }

  /** avail.idx, read again: how many chains are ours to pop. */
  private readAvailIdx(): number {
    const idx = this.avail.getUint16(2, true);
    const n = (idx - this.nextAvail) & 0xffff;
    if (n > this.size)
      this.fail('avail-index', `avail idx is ${n} entries ahead of a ${this.size}-entry queue`);
    this.availIdx = idx;
    return n;
  }

  /**
   * Is there a chain to pop? Chains seen at the last read of avail.idx are popped without reading
   * it again (it is the line the driver writes). Only an empty answer needs the fence: "nothing
   * left" is what lets the device sleep, so our avail_event store must be visible before the
   * read that decides it (a chain seen without the fence is simply served).
   */
  private hasPending(): boolean {
    this.check();
    if (this.availIdx !== this.nextAvail) return true;
    if (this.readAvailIdx() > 0) return true;
    memoryFence();
    return this.readAvailIdx() > 0;
  }

  /** Pops the next available chain, or null when there is none. */
  pop(): DescriptorChain | null {
    if (!this.hasPending()) return null;
    const chain = new DescriptorChain(this.mem);
    this.take(chain);
    return chain;
  }

  /**
   * Like pop(), but fills this queue's one reusable chain, which stays valid only until the next
   * popTransient(): for chains served and pushed at once (the requestq), so serving allocates nothing.
   */
  popTransient(): DescriptorChain | null {
    if (!this.hasPending()) return null;
    this.take(this.transient);
    return this.transient;
  }

  private take(chain: DescriptorChain): void {
    const head = this.avail.getUint16(4 + 2 * (this.nextAvail % this.size), true);
    this.walk(head, chain);
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    if (this.opts.eventIdx && !this.kicksSuppressed)
      this.used.setUint16(4 + 8 * this.size, this.nextAvail, true);
  }

  /**
   * Busy polling: asks the driver not to kick while we look at the avail ring ourselves
   * (virtio 1.2 §2.7.10: used.flags NO_NOTIFY; under EVENT_IDX avail_event one behind our index,
   * which the driver's index moves away from, and it stays there until allowKicks()).
   */
  suppressKicks(): void {
    this.kicksSuppressed = true;
    if (this.opts.eventIdx) this.used.setUint16(4 + 8 * this.size, (this.nextAvail - 1) & 0xffff, true);
    else this.used.setUint16(0, this.used.getUint16(0, true) | UsedFlag.NO_NOTIFY, true);
  }

  /**
   * Asks for kicks again, then looks at the avail ring once more: true when chains arrived while
   * kicks were off (a driver that saw them suppressed sent none, so they are ours to serve now).
   * A broken queue gets its kicks back too (a restarted ring must not start silenced) and says false.
   */
  allowKicks(): boolean {
    this.kicksSuppressed = false;
    if (this.opts.eventIdx) this.used.setUint16(4 + 8 * this.size, this.nextAvail, true);
    else this.used.setUint16(0, this.used.getUint16(0, true) & ~UsedFlag.NO_NOTIFY, true);
    if (this.broken) return false;
    return this.pending() > 0; // pending() fences: our store is visible before avail.idx is read
  }

  /** Returns a chain to the driver with `len` bytes written. */
  push(head: number, len: number): void {
    this.check();
    const slot = 4 + 8 * (this.nextUsed % this.size);
    this.used.setUint32(slot, head, true);
    this.used.setUint32(slot + 4, len, true);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    this.used.setUint16(2, this.nextUsed, true);
  }

  /** Should the driver be notified about what was pushed since the last notification? */
  needsNotify(): boolean {
    if (this.broken) return false;
    const old = this.signalledUsed;
    const now = this.nextUsed;
    const valid = this.signalledValid;
    this.signalledUsed = now;
    if (old === now) return false;
    this.signalledValid = true;
    memoryFence(); // used.idx is published before the driver's used_event / flags are read
    if (!this.opts.eventIdx) return (this.avail.getUint16(0, true) & AvailFlag.NO_INTERRUPT) === 0;
    // The first entries after a (re)start always notify: what the driver saw before is unknown.
    return !valid || needEvent(this.avail.getUint16(4 + 2 * this.size, true), now, old);
  }

  private walk(head: number, chain: DescriptorChain): void {
    chain.clear(head);
    let writable = false;
    let table = this.desc;
    let base = 0; // byte offset of the table in `table`
    let tableSize = this.size;
    let index = head;
    let indirect = false;
    let count = 0;
    let total = 0;
    for (;;) {
      if (index >= tableSize)
        this.fail('head-range', `descriptor ${index} outside a ${tableSize}-entry table`);
      if (++count > tableSize) this.fail('loop', `descriptor chain from ${head} is longer than its table`);
      // No chain may be longer than the queue (virtio 1.2 §2.7.5.3.1): this also bounds a huge indirect table.
      if (++total > this.size + 1)
        this.fail('loop', `descriptor chain from ${head} is longer than the queue`);
      const at = base + index * DESC_SIZE;
      // le64 as two halves: a BigInt per descriptor would be an allocation per request.
      const addr = table.getUint32(at, true) + table.getUint32(at + 4, true) * 0x1_0000_0000;
      const len = table.getUint32(at + 8, true);
      const flags = table.getUint16(at + 12, true);
      const next = table.getUint16(at + 14, true);
      if (flags & DescFlag.INDIRECT) {
        if (!this.opts.indirect) this.fail('indirect', 'indirect descriptor without INDIRECT_DESC');
        if (indirect) this.fail('nested-indirect', 'indirect descriptor inside an indirect table');
        if (flags & DescFlag.NEXT) this.fail('indirect', 'indirect descriptor with NEXT set');
        if (len === 0 || len % DESC_SIZE !== 0) this.fail('indirect', `indirect table length ${len}`);
        table = this.tableAt(addr, len);
        base = addr - (this.mem.regionAt(addr) as { guestPhysAddr: number }).guestPhysAddr;
        tableSize = len / DESC_SIZE;
        index = 0;
        count = 0;
        indirect = true;
        continue;
      }
      // The region holding the whole buffer, the common case (else: several regions, or none).
      const region = this.mem.regionAt(addr);
      let bytes: Uint8Array | null = null;
      let offset = 0;
      if (region !== undefined && addr + len <= region.guestPhysAddr + region.bytes.length) {
        bytes = region.bytes;
        offset = addr - region.guestPhysAddr;
      } else if (!this.mem.contains(addr, len))
        this.fail('out-of-bounds', `buffer [0x${addr.toString(16)}, +${len}) outside guest memory`);
      if (flags & DescFlag.WRITE) {
        writable = true;
        chain.addWritable(addr, len, bytes, offset);
      } else if (writable) this.fail('order', 'device-readable descriptor after a device-writable one');
      else chain.addReadable(addr, len, bytes, offset);
      if (!(flags & DescFlag.NEXT)) break;
      index = next;
    }
  }

  private tableAt(addr: number, len: number): DataView {
    try {
      return this.mem.regionView(addr, len);
    } catch {
      return this.fail(
        'out-of-bounds',
        `indirect table [0x${addr.toString(16)}, +${len}) outside one region`,
      );
    }
  }

  private check(): void {
    if (this.broken) throw this.broken;
  }

  private fail(kind: VirtqueueError['kind'], message: string): never {
    this.broken = new VirtqueueError(kind, message);
    throw this.broken;
  }
}
