/** A guest-physical address range that is not backed by any region. */
export class GuestMemoryError extends Error {
  constructor(
    readonly addr: number,
    readonly length: number,
  ) {
    super(`guest memory access [0x${addr.toString(16)}, +${length}) is outside every region`);
    this.name = 'GuestMemoryError';
  }
}

export interface MemoryRegion {
  /** Guest-physical address of bytes[0]. */
  readonly guestPhysAddr: number;
  readonly bytes: Uint8Array;
}

/**
 * Guest memory as a set of non-overlapping regions. Every access is bounds-checked; an access may
 * span adjacent regions. Views of regions that were unmapped read as length 0, so a stale access
 * fails the bounds check instead of touching freed memory.
 */
export class GuestMemory {
  readonly regions: readonly MemoryRegion[];

  constructor(regions: readonly MemoryRegion[]) {
    const sorted = [...regions].sort((a, b) => a.guestPhysAddr - b.guestPhysAddr);
    // Empty (unmapped) regions hold no bytes, so they overlap nothing; skipping them also keeps the
    // result independent of the order of regions that share a start address.
    let prev: MemoryRegion | undefined;
    for (const r of sorted) {
      if (r.bytes.length === 0) continue;
      if (prev && prev.guestPhysAddr + prev.bytes.length > r.guestPhysAddr)
        throw new RangeError(`memory regions at 0x${prev.guestPhysAddr.toString(16)} overlap`);
      prev = r;
    }
    this.regions = sorted;
  }

  /** The region holding addr, or undefined. */
  regionAt(addr: number): MemoryRegion | undefined {
    for (const r of this.regions) {
      if (addr >= r.guestPhysAddr && addr < r.guestPhysAddr + r.bytes.length) return r;
    }
    return undefined;
  }

  /** True when every byte of [addr, addr+len) is backed. */
  contains(addr: number, len: number): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || !Number.isSafeInteger(addr + len)) return false;
    let at = addr;
    const end = addr + len;
    while (at < end) {
      const r = this.regionAt(at);
      if (!r) return false;
      at = r.guestPhysAddr + r.bytes.length;
    }
    return true;
  }

  /** A view of [addr, addr+len) when it lies inside one region; throws otherwise. */
  view(addr: number, len: number): Uint8Array {
    const r = this.regionAt(addr);
    if (!r || !Number.isSafeInteger(len) || len < 0 || addr + len > r.guestPhysAddr + r.bytes.length)
      throw new GuestMemoryError(addr, len);
    const off = addr - r.guestPhysAddr;
    return r.bytes.subarray(off, off + len);
  }

  /** A DataView over a range inside one region (for rings). */
  dataView(addr: number, len: number): DataView {
    const v = this.view(addr, len);
    return new DataView(v.buffer, v.byteOffset, v.byteLength);
  }

  read(addr: number, len: number): Uint8Array {
    // Check before allocating: a bad len must be a GuestMemoryError, not new Uint8Array's RangeError.
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    const out = new Uint8Array(len);
    this.copy(addr, len, (off, chunk) => out.set(chunk, off));
    return out;
  }

  write(addr: number, data: Uint8Array): void {
    this.copy(addr, data.length, (off, chunk) => chunk.set(data.subarray(off, off + chunk.length)));
  }

  private copy(addr: number, len: number, each: (offset: number, chunk: Uint8Array) => void): void {
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    let done = 0;
    while (done < len) {
      const r = this.regionAt(addr + done) as MemoryRegion;
      const off = addr + done - r.guestPhysAddr;
      const n = Math.min(len - done, r.bytes.length - off);
      each(done, r.bytes.subarray(off, off + n));
      done += n;
    }
  }
}
