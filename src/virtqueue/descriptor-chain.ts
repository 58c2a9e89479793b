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
  /**
   * Per segment, when it lies inside one region: that region's bytes and the segment's offset in
   * them (the queue found the region while validating), so copies go straight to the mapping.
   * null: the segment spans regions (or is empty), and copies go through GuestMemory.
   */
  private readonly regionBytes: Array<Uint8Array | null> = [];
  private readonly regionOffsets: number[] = [];
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

  /**
   * Appends a device-readable segment; only before any writable one (DeviceQueue checks the order).
   * `bytes`/`offset`: the region holding all of it, when the caller knows (see regionBytes).
   */
  addReadable(addr: number, len: number, bytes: Uint8Array | null = null, offset = 0): void {
    this.add(addr, len, bytes, offset);
    this.readableCount++;
    this.readableLength += len;
  }

  addWritable(addr: number, len: number, bytes: Uint8Array | null = null, offset = 0): void {
    this.add(addr, len, bytes, offset);
    this.writableLength += len;
  }

  private add(addr: number, len: number, bytes: Uint8Array | null, offset: number): void {
    const i = this.count++;
    this.addrs[i] = addr;
    this.lens[i] = len;
    this.regionBytes[i] = bytes;
    this.regionOffsets[i] = offset;
  }

  /** Where the bytes directReadable / directWritable found start in the array they returned. */
  directOffset = 0;

  /**
   * The mapped bytes holding the first `n` bytes of the readable part, when one segment inside
   * one region holds them all (the usual request): read them at `directOffset` and on, each byte
   * once (the driver can change guest memory at any time). null: gather them with readInto().
   */
  directReadable(n: number): Uint8Array | null {
    return this.readableCount > 0 ? this.direct(0, n) : null;
  }

  /** Like directReadable, for the first `n` bytes of the writable part (the usual reply). */
  directWritable(n: number): Uint8Array | null {
    return this.count > this.readableCount ? this.direct(this.readableCount, n) : null;
  }

  private direct(i: number, n: number): Uint8Array | null {
    const bytes = this.regionBytes[i];
    const at = this.regionOffsets[i];
    // A view of an unmapped region reads as length 0: then the copying path says why it cannot.
    if (bytes === null || this.lens[i] < n || at + n > bytes.length) return null;
    this.directOffset = at;
    return bytes;
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
      const bytes = this.regionBytes[i];
      const at = this.regionOffsets[i];
      // A view of an unmapped region reads as length 0: then GuestMemory says why it cannot be read.
      if (bytes !== null && at + n <= bytes.length) for (let j = 0; j < n; j++) out[off + j] = bytes[at + j];
      // copied, not viewed: a validated segment may span adjacent regions, or be empty at any address.
      else this.mem.readInto(this.addrs[i], out, off, n);
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
      const bytes = this.regionBytes[i];
      const pos = this.regionOffsets[i] + skip;
      if (bytes !== null && pos + n <= bytes.length)
        for (let j = 0; j < n; j++) bytes[pos + j] = data[done + j];
      else this.mem.writeFrom(this.addrs[i] + skip, data, done, n);
      done += n;
      skip = 0;
    }
    return done;
  }
}
