/**
 * The system calls HostChipLines makes on a GPIO character device, as a port: the native shim
 * in the daemon (native-chip-io.ts), a simulated gpiolib chip in the unit tests. A failing call
 * throws an Error with the errno name as `code` ('EBUSY', 'ENODEV'), like the native shim's
 * SyscallError.
 */
export interface ChipIo {
  /** Opens the chip device read-write, close-on-exec. */
  open(path: string): number;
  /** ioctl(fd, request, arg): the kernel reads and writes `arg` in place. */
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** A non-blocking read into `buf`: the byte count, or null when nothing is there (EAGAIN). */
  read(fd: number, buf: Uint8Array): number | null;
  close(fd: number): void;
  /** Calls `onReadable` while `fd` has data (level-triggered: drain it), or with an error. */
  watch(fd: number, onReadable: (err: Error | null) => void): FdWatch;
}

export interface FdWatch {
  /** Stops watching; after it returns no callback runs. */
  close(): void;
}

/** The errno name of an error thrown by a ChipIo call, or null for anything else. */
export function errnoCode(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const code = (e as Error & { code?: unknown }).code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : null;
}
