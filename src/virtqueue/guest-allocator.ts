import { VirtqueueError } from './virtqueue-error.ts';

const GRAIN = 16;

/** First-fit allocator for driver buffers inside a guest-physical range. */
export class GuestAllocator {
  /** Free blocks as [addr, len], sorted by addr, coalesced. */
  private free: Array<[number, number]>;
  private readonly sizes = new Map<number, number>();

  constructor(base: number, length: number) {
    const start = Math.ceil(base / GRAIN) * GRAIN;
    this.free = [[start, Math.floor((base + length - start) / GRAIN) * GRAIN]];
  }

  alloc(len: number): number {
    const need = Math.max(GRAIN, Math.ceil(len / GRAIN) * GRAIN);
    const i = this.free.findIndex(([, l]) => l >= need);
    if (i < 0) throw new VirtqueueError('full', `guest buffer space exhausted (${len} bytes wanted)`);
    const [addr, l] = this.free[i];
    if (l === need) this.free.splice(i, 1);
    else this.free[i] = [addr + need, l - need];
    this.sizes.set(addr, need);
    return addr;
  }

  release(addr: number): void {
    const len = this.sizes.get(addr);
    if (len === undefined) throw new RangeError(`0x${addr.toString(16)} was not allocated`);
    this.sizes.delete(addr);
    let i = this.free.findIndex(([a]) => a > addr);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, [addr, len]);
    const next = this.free[i + 1];
    if (next && addr + len === next[0]) {
      this.free[i][1] += next[1];
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev[0] + prev[1] === addr) {
      prev[1] += this.free[i][1];
      this.free.splice(i, 1);
    }
  }

  get allocated(): number {
    return this.sizes.size;
  }
}
