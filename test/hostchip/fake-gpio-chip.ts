// A simulated kernel gpiolib chip behind the ChipIo port: it decodes the uAPI v2 structs at the
// byte offsets of <linux/gpio.h> (independently of src/hostchip/gpio-uapi.ts), keeps line
// ownership like gpiolib (EBUSY, EINVAL for bad flag combinations, ENODEV once unplugged), and
// queues 48-byte edge events on request fds that a level-triggered watch reports.
import type { ChipIo, FdWatch } from '../../src/hostchip/chip-io.ts';

const FLAG_USED = 1n << 0n;
const FLAG_ACTIVE_LOW = 1n << 1n;
const FLAG_INPUT = 1n << 2n;
const FLAG_OUTPUT = 1n << 3n;
const FLAG_EDGE_RISING = 1n << 4n;
const FLAG_EDGE_FALLING = 1n << 5n;
const KERNEL_EVENT_BUFFER = 16;

export class FakeErrno extends Error {
  constructor(
    readonly code: string,
    readonly syscall: string,
  ) {
    super(`${syscall}: ${code}`);
  }
}

export interface FakeLine {
  name: string;
  /** What the outside world applies to the pin. */
  input: 0 | 1;
  /** Another process's request (consumer label), or null. */
  heldBy: string | null;
}

interface Request {
  offset: number;
  consumer: string;
  flags: bigint;
  driven: 0 | 1;
  events: Uint8Array[];
  seqno: number;
  watcher: (() => void) | null;
}

/** What a test can see: every ioctl made, with the request struct's fields decoded. */
export interface IoctlRecord {
  fd: number;
  request: number;
  flags?: bigint;
  outputValue?: bigint;
  numAttrs?: number;
}

export class FakeGpioChip implements ChipIo {
  readonly lines: FakeLine[];
  readonly ioctls: IoctlRecord[] = [];
  unplugged = false;
  private nextFd = 1000;
  private readonly chipFds = new Set<number>();
  private readonly requests = new Map<number, Request>();

  constructor(
    readonly path: string,
    names: readonly string[],
    readonly label = 'fake-chip',
  ) {
    this.lines = names.map((name) => ({ name, input: 0, heldBy: null }));
  }

  // --- the test's side ---

  /** The request holding `offset` (consumer, flags, driven level), or undefined. */
  requestOf(offset: number): Request | undefined {
    return [...this.requests.values()].find((r) => r.offset === offset);
  }

  openFds(): number {
    return this.chipFds.size + this.requests.size;
  }

  /** Apply a level to a pin from outside; an input request with edge detection queues an event. */
  setInput(offset: number, level: 0 | 1): void {
    const line = this.lines[offset];
    if (line.input === level) return;
    line.input = level;
    const r = this.requestOf(offset);
    if (!r || (r.flags & FLAG_INPUT) === 0n) return;
    const want = level === 1 ? FLAG_EDGE_RISING : FLAG_EDGE_FALLING;
    if ((r.flags & want) === 0n) return;
    const ev = new Uint8Array(48);
    const v = new DataView(ev.buffer);
    v.setBigUint64(0, process.hrtime.bigint(), true);
    v.setUint32(8, level === 1 ? 1 : 2, true);
    v.setUint32(12, offset, true);
    v.setUint32(16, ++r.seqno, true);
    v.setUint32(20, r.seqno, true);
    r.events.push(ev);
    if (r.events.length > KERNEL_EVENT_BUFFER) r.events.shift(); // the kernel drops the oldest
    this.kick(r);
  }

  // --- ChipIo ---

  open(path: string): number {
    if (path !== this.path) throw new FakeErrno('ENOENT', 'open');
    if (this.unplugged) throw new FakeErrno('ENODEV', 'open');
    const fd = this.nextFd++;
    this.chipFds.add(fd);
    return fd;
  }

  ioctl(fd: number, request: number, arg: Uint8Array): number {
    const v = new DataView(arg.buffer, arg.byteOffset, arg.byteLength);
    const rec: IoctlRecord = { fd, request };
    this.ioctls.push(rec);
    if (this.chipFds.has(fd)) {
      if (this.unplugged) throw new FakeErrno('ENODEV', 'ioctl');
      switch (request) {
        case 0x8044b401: // GPIO_GET_CHIPINFO_IOCTL
          arg.set(new TextEncoder().encode('gpiochip9'), 0);
          arg.set(new TextEncoder().encode(this.label), 32);
          v.setUint32(64, this.lines.length, true);
          return 0;
        case 0xc100b405: {
          // GPIO_V2_GET_LINEINFO_IOCTL
          const offset = v.getUint32(64, true);
          const line = this.lines[offset];
          if (!line || arg.subarray(0, 64).some((b) => b !== 0)) throw new FakeErrno('EINVAL', 'ioctl');
          arg.set(new TextEncoder().encode(line.name), 0);
          const r = this.requestOf(offset);
          const consumer = line.heldBy ?? r?.consumer ?? '';
          arg.set(new TextEncoder().encode(consumer), 32);
          v.setBigUint64(72, (consumer ? FLAG_USED : 0n) | (r?.flags ?? FLAG_INPUT), true);
          return 0;
        }
        case 0xc250b407: {
          // GPIO_V2_GET_LINE_IOCTL
          const offset = v.getUint32(0, true);
          const numLines = v.getUint32(560, true);
          const line = this.lines[offset];
          const config = this.decodeConfig(v, 288);
          Object.assign(rec, config);
          if (!line || numLines !== 1) throw new FakeErrno('EINVAL', 'ioctl');
          this.checkFlags(config.flags);
          if (line.heldBy !== null || this.requestOf(offset)) throw new FakeErrno('EBUSY', 'ioctl');
          const end = arg.indexOf(0, 256);
          const consumer = new TextDecoder().decode(arg.subarray(256, end));
          const rfd = this.nextFd++;
          this.requests.set(rfd, {
            offset,
            consumer,
            flags: config.flags,
            driven: Number(config.outputValue ?? 0n) as 0 | 1,
            events: [],
            seqno: 0,
            watcher: null,
          });
          v.setInt32(588, rfd, true);
          return 0;
        }
        default:
          throw new FakeErrno('ENOTTY', 'ioctl');
      }
    }
    const r = this.requests.get(fd);
    if (!r) throw new FakeErrno('EBADF', 'ioctl');
    if (this.unplugged) throw new FakeErrno('ENODEV', 'ioctl');
    switch (request) {
      case 0xc110b40d: {
        // GPIO_V2_LINE_SET_CONFIG_IOCTL
        const config = this.decodeConfig(v, 0);
        Object.assign(rec, config);
        this.checkFlags(config.flags);
        r.flags = config.flags;
        if (config.outputValue !== undefined) r.driven = Number(config.outputValue) as 0 | 1;
        if ((r.flags & FLAG_INPUT) !== 0n) r.events = [];
        return 0;
      }
      case 0xc010b40e: {
        // GPIO_V2_LINE_GET_VALUES_IOCTL
        if (v.getBigUint64(8, true) !== 1n) throw new FakeErrno('EINVAL', 'ioctl');
        const level = (r.flags & FLAG_OUTPUT) !== 0n ? r.driven : this.lines[r.offset].input;
        v.setBigUint64(0, BigInt(level), true);
        return 0;
      }
      case 0xc010b40f: {
        // GPIO_V2_LINE_SET_VALUES_IOCTL
        if ((r.flags & FLAG_OUTPUT) === 0n) throw new FakeErrno('EPERM', 'ioctl');
        r.driven = (v.getBigUint64(0, true) & 1n) === 1n ? 1 : 0;
        return 0;
      }
      default:
        throw new FakeErrno('ENOTTY', 'ioctl');
    }
  }

  read(fd: number, buf: Uint8Array): number | null {
    const r = this.requests.get(fd);
    if (!r) throw new FakeErrno('EBADF', 'read');
    if (this.unplugged) throw new FakeErrno('ENODEV', 'read');
    if (buf.length < 48) throw new FakeErrno('EINVAL', 'read');
    if (r.events.length === 0) return null;
    let n = 0;
    while (r.events.length > 0 && n + 48 <= buf.length) {
      buf.set(r.events.shift() as Uint8Array, n);
      n += 48;
    }
    return n;
  }

  close(fd: number): void {
    if (this.chipFds.delete(fd)) return;
    if (!this.requests.delete(fd)) throw new FakeErrno('EBADF', 'close');
  }

  watch(fd: number, onReadable: (err: Error | null) => void): FdWatch {
    const r = this.requests.get(fd);
    if (!r) throw new FakeErrno('EBADF', 'watch');
    let open = true;
    r.watcher = () => {
      // Level-triggered, like uv_poll: called again on the next turn while events remain.
      setImmediate(() => {
        if (!open || this.requests.get(fd) !== r) return;
        if (r.events.length === 0) return;
        onReadable(null);
        if (r.events.length > 0 && open) r.watcher?.();
      });
    };
    this.kick(r);
    return {
      close: () => {
        open = false;
        r.watcher = null;
      },
    };
  }

  private kick(r: Request): void {
    if (r.events.length > 0) r.watcher?.();
  }

  private checkFlags(flags: bigint): void {
    const input = (flags & FLAG_INPUT) !== 0n;
    const output = (flags & FLAG_OUTPUT) !== 0n;
    if (input && output) throw new FakeErrno('EINVAL', 'ioctl');
    if ((flags & (FLAG_EDGE_RISING | FLAG_EDGE_FALLING)) !== 0n && !input)
      throw new FakeErrno('EINVAL', 'ioctl');
    if ((flags & FLAG_ACTIVE_LOW) !== 0n)
      throw new Error('the fake refuses ACTIVE_LOW: vgpio must never set it');
  }

  /** struct gpio_v2_line_config at `at`: flags, and an OUTPUT_VALUES attribute for bit 0 if present. */
  private decodeConfig(v: DataView, at: number): { flags: bigint; outputValue?: bigint; numAttrs: number } {
    const flags = v.getBigUint64(at, true);
    const numAttrs = v.getUint32(at + 8, true);
    let outputValue: bigint | undefined;
    for (let i = 0; i < numAttrs; i++) {
      const attr = at + 32 + i * 24;
      if (v.getUint32(attr, true) === 2 && (v.getBigUint64(attr + 16, true) & 1n) === 1n)
        outputValue = v.getBigUint64(attr + 8, true) & 1n;
    }
    return { flags, outputValue, numAttrs };
  }
}
