/**
 * Little-endian fields read or written in order, the way vhost-user payloads are laid out
 * (vhost-user.rst "Message types"): each call advances the cursor by the field's size.
 */
export class ByteReader {
  private readonly view: DataView;
  private at = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.length - this.at;
  }

  u32(): number {
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }

  u64(): bigint {
    const v = this.view.getBigUint64(this.at, true);
    this.at += 8;
    return v;
  }

  /** The next `n` bytes (a view, not a copy). */
  bytesOf(n: number): Uint8Array {
    if (n > this.remaining) throw new RangeError(`${n} bytes wanted, ${this.remaining} left`);
    const b = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }

  /** Everything not read yet (a view). */
  rest(): Uint8Array {
    return this.bytesOf(this.remaining);
  }
}

export class ByteWriter {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u32(x: number): this {
    this.view.setUint32(this.at, x, true);
    this.at += 4;
    return this;
  }

  /** Stored modulo 2^64. */
  u64(x: bigint): this {
    this.view.setBigUint64(this.at, BigInt.asUintN(64, x), true);
    this.at += 8;
    return this;
  }

  bytesOf(b: Uint8Array): this {
    this.bytes.set(b, this.at);
    this.at += b.length;
    return this;
  }

  /** The buffer; throws when fewer bytes were written than it holds (a forgotten field). */
  done(): Uint8Array {
    if (this.at !== this.bytes.length) throw new RangeError(`wrote ${this.at} of ${this.bytes.length} bytes`);
    return this.bytes;
  }
}
