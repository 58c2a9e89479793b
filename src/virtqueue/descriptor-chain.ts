import type { GuestMemory } from './guest-memory.ts';

export interface Segment {
  readonly addr: number;
  readonly len: number;
}

/**
 * One popped chain, already validated: device-readable segments then device-writable ones.
 * Reads gather and writes scatter by bytes, whatever the descriptor layout was.
 */
export class DescriptorChain {
  readonly readableLength: number;
  readonly writableLength: number;

  constructor(
    private readonly mem: GuestMemory,
    readonly head: number,
    readonly readable: readonly Segment[],
    readonly writable: readonly Segment[],
  ) {
    this.readableLength = readable.reduce((n, s) => n + s.len, 0);
    this.writableLength = writable.reduce((n, s) => n + s.len, 0);
  }

  /** Gathers up to max bytes of the readable part. */
  read(max = this.readableLength): Uint8Array {
    const out = new Uint8Array(Math.min(max, this.readableLength));
    let off = 0;
    for (const s of this.readable) {
      if (off >= out.length) break;
      const n = Math.min(s.len, out.length - off);
      // read, not view: a validated segment may span adjacent regions, or be empty at any address.
      out.set(this.mem.read(s.addr, n), off);
      off += n;
    }
    return out;
  }

  /** Scatters data into the writable part from byte offset `at`; returns the bytes written. */
  write(data: Uint8Array, at = 0): number {
    // A negative offset would land before the first writable segment, in memory the driver never gave us.
    if (!Number.isSafeInteger(at) || at < 0) throw new RangeError(`write offset ${at} is not a byte offset`);
    let skip = at;
    let done = 0;
    for (const s of this.writable) {
      if (done >= data.length) break;
      if (skip >= s.len) {
        skip -= s.len;
        continue;
      }
      const n = Math.min(s.len - skip, data.length - done);
      this.mem.write(s.addr + skip, data.subarray(done, done + n));
      done += n;
      skip = 0;
    }
    return done;
  }
}
