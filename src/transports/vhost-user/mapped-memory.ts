import { fdSeals, fdSize, mappingFaulted, mappingFaults, mmap, munmap } from '../../native/index.ts';
import { GuestMemory } from '../../virtqueue/guest-memory.ts';
import type { MemoryRegionDesc } from './message.ts';
import { memoryFdRefusal } from './memory-fs.ts';

interface Mapping {
  desc: MemoryRegionDesc;
  buffer: ArrayBuffer;
  bytes: Uint8Array;
  /** Its memfd is sealed against shrinking: no truncation can ever fault it. */
  sealed: boolean;
}

/** A front-end's memory table, mapped: guest-physical access plus front-end user-address translation. */
export class MappedMemory {
  readonly guest: GuestMemory;
  private readonly maps: Mapping[];
  /** The process's survived-SIGBUS count when last looked at. */
  private faultsSeen = Atomics.load(mappingFaults, 0);

  private constructor(maps: Mapping[]) {
    this.maps = maps;
    this.guest = new GuestMemory(
      maps.map((m) => ({ guestPhysAddr: Number(m.desc.guestPhysAddr), bytes: m.bytes })),
    );
  }

  /**
   * Maps each region from its fd. Throws (having unmapped anything mapped) when a region is
   * empty, overlaps another, does not fit its fd, or lies beyond 2^53.
   */
  static map(regions: readonly MemoryRegionDesc[], fds: readonly number[]): MappedMemory {
    if (regions.length !== fds.length) throw new Error(`${regions.length} regions but ${fds.length} fds`);
    const maps: Mapping[] = [];
    try {
      regions.forEach((r, i) => {
        const safe = (x: bigint) => x <= BigInt(Number.MAX_SAFE_INTEGER);
        if (r.memorySize === 0n) throw new Error(`region ${i} is empty`);
        if (
          !safe(r.guestPhysAddr + r.memorySize) ||
          !safe(r.userspaceAddr + r.memorySize) ||
          !safe(r.mmapOffset + r.memorySize)
        )
          throw new Error(`region ${i} lies beyond 2^53`);
        const length = Number(r.mmapOffset + r.memorySize);
        const size = fdSize(fds[i]);
        if (size < length) throw new Error(`region ${i} needs ${length} bytes of its fd, which has ${size}`);
        const refusal = memoryFdRefusal(fds[i]);
        if (refusal) throw new Error(`region ${i}: ${refusal}`);
        const buffer = mmap(fds[i], length, 0, true);
        maps.push({
          desc: r,
          buffer,
          bytes: new Uint8Array(buffer, Number(r.mmapOffset), Number(r.memorySize)),
          sealed: fdSeals(fds[i])?.includes('shrink') ?? false,
        });
      });
      const ranges = (key: 'guestPhysAddr' | 'userspaceAddr') =>
        maps
          .map((m) => [m.desc[key], m.desc[key] + m.desc.memorySize])
          .sort((a, b) => (a[0] < b[0] ? -1 : 1));
      for (const key of ['guestPhysAddr', 'userspaceAddr'] as const) {
        const rs = ranges(key);
        for (let i = 1; i < rs.length; i++)
          if (rs[i][0] < rs[i - 1][1]) throw new Error(`memory regions overlap (${key})`);
      }
      return new MappedMemory(maps);
    } catch (e) {
      for (const m of maps) munmap(m.buffer);
      throw e;
    }
  }

  /** Front-end user address → guest-physical address, when [ua, ua+len) lies in one region. */
  userToGuest(ua: bigint, len: number): number | null {
    for (const m of this.maps) {
      const { userspaceAddr: start, memorySize: size, guestPhysAddr } = m.desc;
      if (ua >= start && ua + BigInt(len) <= start + size) return Number(guestPhysAddr + (ua - start));
    }
    return null;
  }

  /**
   * True when a region's file shrank under us and a touch past its new end was survived (the
   * guard maps zero pages there: reads give 0, writes are lost), so the memory is no longer the
   * guest's. We take the cheap path for everyone: a shared counter says whether any mapping in the
   * process faulted since we last looked (no native call), and only then are our regions asked,
   * skipping those sealed against shrinking (QEMU's memfd backend seals by default). Refusing
   * unsealed regions instead would turn away file-backed guest memory, which QEMU cannot seal.
   */
  faulted(): boolean {
    const now = Atomics.load(mappingFaults, 0);
    if (now === this.faultsSeen) return false;
    this.faultsSeen = now;
    return this.maps.some((m) => !m.sealed && mappingFaulted(m.buffer));
  }

  get regionCount(): number {
    return this.maps.length;
  }

  /** Unmaps everything; views taken earlier read as length 0 from now on. */
  unmap(): void {
    for (const m of this.maps) munmap(m.buffer);
    this.maps.length = 0;
  }
}
