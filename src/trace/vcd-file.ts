import { closeSync, openSync, writeSync } from 'node:fs';
import type { ControlEvent } from '../control/control-protocol.ts';
import { VcdWriter, type TraceDevice } from './vcd-writer.ts';

/**
 * A VCD trace streamed to a file: chunks are written as they fill, and at least every
 * `flushMs`, so the file can be opened while it grows and memory stays bounded.
 */
export class VcdFile {
  private readonly fd: number;
  private readonly writer: VcdWriter;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  bytes = 0;

  constructor(
    readonly path: string,
    devices: readonly TraceDevice[],
    startNs: bigint,
    flushMs = 250,
  ) {
    this.fd = openSync(path, 'w', 0o644);
    this.writer = new VcdWriter({
      devices,
      startNs,
      write: (chunk) => {
        const b = Buffer.from(chunk);
        let off = 0;
        while (off < b.length) off += writeSync(this.fd, b, off);
        this.bytes += b.length;
      },
    });
    this.timer = setInterval(() => this.writer.flush(), flushMs);
    this.timer.unref();
  }

  event(device: number, e: ControlEvent): void {
    this.writer.event(device, e);
  }

  /** Ends the trace at `timeNs` and closes the file. */
  close(timeNs: bigint = process.hrtime.bigint()): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.writer.end(timeNs);
    closeSync(this.fd);
  }
}
