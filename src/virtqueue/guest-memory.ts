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
  /** One DataView per region, made on first use (regionView). */
  private readonly regionViews = new Map<MemoryRegion, DataView>();
  /** The region the last lookup found: a ring's buffers are nearly always in the same one. */
  private last: MemoryRegion | null = null;

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
    const l = this.last;
    // An unmapped region's view has length 0: it never matches, here or below.
    if (l !== null && addr >= l.guestPhysAddr && addr < l.guestPhysAddr + l.bytes.length) return l;
    for (const r of this.regions) {
      if (addr >= r.guestPhysAddr && addr < r.guestPhysAddr + r.bytes.length) {
        this.last = r;
        return r;
      }
    }
    return undefined;
  }

  /** True when every byte of [addr, addr+len) is backed. */
  contains(addr: number, len: number): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || !Number.isSafeInteger(addr + len)) return false;
    const first = this.regionAt(addr);
    if (first !== undefined && addr + len <= first.guestPhysAddr + first.bytes.length) return true;
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

  /**
   * A DataView of the whole region holding [addr, addr+len), made once per region; throws when the
   * range is not inside one region. Offsets into it are `addr - regionAt(addr).guestPhysAddr`.
   */
  regionView(addr: number, len: number): DataView {
    const r = this.regionAt(addr);
    if (!r || !Number.isSafeInteger(len) || len < 0 || addr + len > r.guestPhysAddr + r.bytes.length)
      throw new GuestMemoryError(addr, len);
    let v = this.regionViews.get(r);
    if (v === undefined) {
      v = new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
      this.regionViews.set(r, v);
    }
    return v;
  }

  read(addr: number, len: number): Uint8Array {
    // Check before allocating: a bad len must be a GuestMemoryError, not new Uint8Array's RangeError.
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    const out = new Uint8Array(len);
    this.readInto(addr, out, 0, len);
    return out;
  }

  write(addr: number, data: Uint8Array): void {
    this.writeFrom(addr, data, 0, data.length);
  }

  /** Sets [addr, addr+len) to `byte`. */
  fill(addr: number, len: number, byte: number): void {
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    let done = 0;
    while (done < len) {
      const r = this.regionAt(addr + done) as MemoryRegion;
      const off = addr + done - r.guestPhysAddr;
      const n = Math.min(len - done, r.bytes.length - off);
      r.bytes.fill(byte, off, off + n);
      done += n;
    }
  }

  /** Copies [addr, addr+len) into out[outOffset...]; allocates nothing for small copies. */
  readInto(addr: number, out: Uint8Array, outOffset: number, len: number): void {
    this.copy(addr, len, out, outOffset, false);
  }

  /** Copies data[srcOffset, srcOffset+len) to [addr, addr+len). */
  writeFrom(addr: number, data: Uint8Array, srcOffset: number, len: number): void {
    this.copy(addr, len, data, srcOffset, true);
  }

  private copy(addr: number, len: number, buf: Uint8Array, bufOffset: number, toGuest: boolean): void {
    if (len <= 64 && this.copyInOneRegion(addr, len, buf, bufOffset, toGuest)) return;
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    if (bufOffset < 0 || bufOffset + len > buf.length)
      throw new RangeError(`${len} bytes at offset ${bufOffset} do not fit a ${buf.length}-byte buffer`);
    let done = 0;
    while (done < len) {
      const r = this.regionAt(addr + done) as MemoryRegion;
      const off = addr + done - r.guestPhysAddr;
      const n = Math.min(len - done, r.bytes.length - off);
      const bytes = r.bytes;
      const at = bufOffset + done;
      if (n <= 64) {
        // A request or a reply: a byte loop costs less than the two views set() would need.
        if (toGuest) for (let i = 0; i < n; i++) bytes[off + i] = buf[at + i];
        else for (let i = 0; i < n; i++) buf[at + i] = bytes[off + i];
      } else if (toGuest) bytes.set(buf.subarray(at, at + n), off);
      else buf.set(bytes.subarray(off, off + n), at);
      done += n;
    }
  }

  /**
   * The common case of copy(): a request or a reply inside one region, copied by a byte loop (less
   * than the two views set() would need). False, having touched nothing, when it is not that case.
   */
  private copyInOneRegion(
    addr: number,
    len: number,
    buf: Uint8Array,
    bufOffset: number,
    toGuest: boolean,
  ): boolean {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || len < 0) return false;
    if (bufOffset < 0 || bufOffset + len > buf.length) return false;
    const r = this.regionAt(addr);
    if (r === undefined) return false;
    const bytes = r.bytes;
    const off = addr - r.guestPhysAddr;
    if (off + len > bytes.length) return false;
    if (toGuest) for (let i = 0; i < len; i++) bytes[off + i] = buf[bufOffset + i];
    else for (let i = 0; i < len; i++) buf[bufOffset + i] = bytes[off + i];
    return true;
  }
}
