import type { GuestMemory } from './guest-memory.ts';

export interface Segment {
  readonly addr: number;
  readonly len: number;
}

/**
 * One popped chain, already validated: device-readable segments then device-writable ones.
 * Reads gather and writes scatter by bytes, whatever the descriptor layout was. The segments are
 * kept in plain number arrays that a queue may refill (DeviceQueue.popTransient), so serving a
 * request allocates nothing.
 */
export class DescriptorChain {
  head = 0;
  readableLength = 0;
  writableLength = 0;
  private readonly addrs: number[] = [];
  private readonly lens: number[] = [];
  private readableCount = 0;
  private count = 0;

  constructor(
    private readonly mem: GuestMemory,
    head = 0,
    readable: readonly Segment[] = [],
    writable: readonly Segment[] = [],
  ) {
    this.clear(head);
    for (const s of readable) this.addReadable(s.addr, s.len);
    for (const s of writable) this.addWritable(s.addr, s.len);
  }

  /** The device-readable segments, in order (a new array). */
  get readable(): Segment[] {
    const out: Segment[] = [];
    for (let i = 0; i < this.readableCount; i++) out.push({ addr: this.addrs[i], len: this.lens[i] });
    return out;
  }

  /** The device-writable segments, in order (a new array). */
  get writable(): Segment[] {
    const out: Segment[] = [];
    for (let i = this.readableCount; i < this.count; i++)
      out.push({ addr: this.addrs[i], len: this.lens[i] });
    return out;
  }

  /** Empties the chain for reuse (DeviceQueue). */
  clear(head: number): void {
    this.head = head;
    this.readableLength = this.writableLength = 0;
    this.readableCount = this.count = 0;
  }

  /** Appends a device-readable segment; only before any writable one (DeviceQueue checks the order). */
  addReadable(addr: number, len: number): void {
    this.addrs[this.count] = addr;
    this.lens[this.count] = len;
    this.count++;
    this.readableCount++;
    this.readableLength += len;
  }

  addWritable(addr: number, len: number): void {
    this.addrs[this.count] = addr;
    this.lens[this.count] = len;
    this.count++;
    this.writableLength += len;
  }

  /** Gathers up to max bytes of the readable part. */
  read(max = this.readableLength): Uint8Array {
    const out = new Uint8Array(Math.min(max, this.readableLength));
    this.readInto(out, out.length);
    return out;
  }

  /** Gathers up to max bytes of the readable part into `out` (from its start); returns the bytes read. */
  readInto(out: Uint8Array, max = out.length): number {
    const want = Math.min(max, out.length, this.readableLength);
    let off = 0;
    for (let i = 0; i < this.readableCount && off < want; i++) {
      const n = Math.min(this.lens[i], want - off);
      // copied, not viewed: a validated segment may span adjacent regions, or be empty at any address.
      this.mem.readInto(this.addrs[i], out, off, n);
      off += n;
    }
    return off;
  }

  /** Scatters data into the writable part from byte offset `at`; returns the bytes written. */
  write(data: Uint8Array, at = 0): number {
    // A negative offset would land before the first writable segment, in memory the driver never gave us.
    if (!Number.isSafeInteger(at) || at < 0) throw new RangeError(`write offset ${at} is not a byte offset`);
    let skip = at;
    let done = 0;
    for (let i = this.readableCount; i < this.count && done < data.length; i++) {
      const len = this.lens[i];
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, data.length - done);
      this.mem.writeFrom(this.addrs[i] + skip, data, done, n);
      done += n;
      skip = 0;
    }
    return done;
  }
}
