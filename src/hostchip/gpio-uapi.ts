/**
 * The Linux GPIO character device, uAPI v2 (include/uapi/linux/gpio.h): ioctl numbers and the
 * byte layout of the structs vgpio exchanges with the kernel. Pure encoding: no system calls.
 */

/** Architectures whose ioctl numbers use the generic _IOC layout (asm-generic/ioctl.h). */
const GENERIC_IOC_ARCHES: readonly string[] = ['x64', 'arm64', 'arm', 'riscv64'];

/** Refuses a CPU architecture whose ioctl encoding differs (MIPS, PowerPC, SPARC, Alpha). */
export function checkIoctlEncoding(arch: string = process.arch): void {
  if (!GENERIC_IOC_ARCHES.includes(arch))
    throw new Error(
      `host GPIO pass-through is not supported on ${arch}: vgpio computes ioctl numbers in the ` +
        `generic _IOC encoding, used by ${GENERIC_IOC_ARCHES.join(', ')} (MIPS, PowerPC, SPARC and ` +
        `Alpha encode them differently)`,
    );
}

const IOC_WRITE = 1;
const IOC_READ = 2;
const GPIO_MAGIC = 0xb4;

/** _IOC(dir, 0xB4, nr, size) in the generic layout: dir 2 bits, size 14, type 8, nr 8. */
const ioc = (dir: number, nr: number, size: number): number =>
  ((dir << 30) | (size << 16) | (GPIO_MAGIC << 8) | nr) >>> 0;

export const GPIO_MAX_NAME_SIZE = 32;
export const GPIO_V2_LINES_MAX = 64;
export const GPIO_V2_LINE_NUM_ATTRS_MAX = 10;

export const CHIPINFO_SIZE = 68;
export const LINE_INFO_SIZE = 256;
export const LINE_CONFIG_SIZE = 272;
export const LINE_REQUEST_SIZE = 592;
export const LINE_VALUES_SIZE = 16;
export const LINE_EVENT_SIZE = 48;

export const GPIO_GET_CHIPINFO_IOCTL = ioc(IOC_READ, 0x01, CHIPINFO_SIZE);
export const GPIO_V2_GET_LINEINFO_IOCTL = ioc(IOC_READ | IOC_WRITE, 0x05, LINE_INFO_SIZE);
export const GPIO_V2_GET_LINE_IOCTL = ioc(IOC_READ | IOC_WRITE, 0x07, LINE_REQUEST_SIZE);
export const GPIO_V2_LINE_SET_CONFIG_IOCTL = ioc(IOC_READ | IOC_WRITE, 0x0d, LINE_CONFIG_SIZE);
export const GPIO_V2_LINE_GET_VALUES_IOCTL = ioc(IOC_READ | IOC_WRITE, 0x0e, LINE_VALUES_SIZE);
export const GPIO_V2_LINE_SET_VALUES_IOCTL = ioc(IOC_READ | IOC_WRITE, 0x0f, LINE_VALUES_SIZE);

/** enum gpio_v2_line_flag. */
export const LineFlag = {
  USED: 1n << 0n,
  ACTIVE_LOW: 1n << 1n,
  INPUT: 1n << 2n,
  OUTPUT: 1n << 3n,
  EDGE_RISING: 1n << 4n,
  EDGE_FALLING: 1n << 5n,
  OPEN_DRAIN: 1n << 6n,
  OPEN_SOURCE: 1n << 7n,
  BIAS_PULL_UP: 1n << 8n,
  BIAS_PULL_DOWN: 1n << 9n,
  BIAS_DISABLED: 1n << 10n,
} as const;

/** enum gpio_v2_line_attr_id. */
export const LineAttrId = { FLAGS: 1, OUTPUT_VALUES: 2, DEBOUNCE: 3 } as const;

/** enum gpio_v2_line_event_id. */
export const LineEventId = { RISING_EDGE: 1, FALLING_EDGE: 2 } as const;

export interface ChipInfo {
  name: string;
  label: string;
  lines: number;
}

export interface LineInfo {
  name: string;
  /** Who holds the line ('' when free or unnamed). */
  consumer: string;
  offset: number;
  flags: bigint;
}

/** One line's configuration: flags, and the level to drive when OUTPUT is among them. */
export interface LineConfig {
  flags: bigint;
  outputValue?: 0 | 1;
}

export interface LineEvent {
  timestampNs: bigint;
  /** LineEventId. */
  id: number;
  offset: number;
  seqno: number;
  lineSeqno: number;
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A NUL-terminated char[] field; bytes past the first NUL are ignored. */
function cString(b: Uint8Array, offset: number, size: number): string {
  const field = b.subarray(offset, offset + size);
  const end = field.indexOf(0);
  return new TextDecoder('latin1').decode(end < 0 ? field : field.subarray(0, end));
}

function putCString(b: Uint8Array, offset: number, size: number, s: string): void {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length >= size) throw new RangeError(`"${s}" does not fit a ${size}-byte name field`);
  b.set(bytes, offset);
}

export function decodeChipInfo(b: Uint8Array): ChipInfo {
  return { name: cString(b, 0, 32), label: cString(b, 32, 32), lines: view(b).getUint32(64, true) };
}

/** struct gpio_v2_line_info for GET_LINEINFO: only `offset` is input; the rest must be zero. */
export function encodeLineInfoQuery(offset: number): Uint8Array {
  const b = new Uint8Array(LINE_INFO_SIZE);
  view(b).setUint32(64, offset, true);
  return b;
}

export function decodeLineInfo(b: Uint8Array): LineInfo {
  const v = view(b);
  return {
    name: cString(b, 0, 32),
    consumer: cString(b, 32, 32),
    offset: v.getUint32(64, true),
    flags: v.getBigUint64(72, true),
  };
}

/**
 * struct gpio_v2_line_config for one line (mask bit 0): the flags, plus an OUTPUT_VALUES attribute
 * when the line is an output, so it starts driving the stored level instead of whatever it had.
 */
function putLineConfig(b: Uint8Array, at: number, config: LineConfig): void {
  const v = view(b);
  v.setBigUint64(at, config.flags, true);
  if ((config.flags & LineFlag.OUTPUT) !== 0n) {
    v.setUint32(at + 8, 1, true); // num_attrs
    const attr = at + 32; // attrs[0]: gpio_v2_line_config_attribute
    v.setUint32(attr, LineAttrId.OUTPUT_VALUES, true);
    v.setBigUint64(attr + 8, BigInt(config.outputValue ?? 0), true);
    v.setBigUint64(attr + 16, 1n, true); // mask: the request's first (only) line
  }
}

export function encodeLineConfig(config: LineConfig): Uint8Array {
  const b = new Uint8Array(LINE_CONFIG_SIZE);
  putLineConfig(b, 0, config);
  return b;
}

/** struct gpio_v2_line_request for one line; the kernel writes the request fd at byte 588. */
export function encodeLineRequest(offset: number, consumer: string, config: LineConfig): Uint8Array {
  const b = new Uint8Array(LINE_REQUEST_SIZE);
  const v = view(b);
  v.setUint32(0, offset, true);
  putCString(b, 256, GPIO_MAX_NAME_SIZE, consumer);
  putLineConfig(b, 288, config);
  v.setUint32(560, 1, true); // num_lines
  return b;
}

export const requestFdOf = (request: Uint8Array): number => view(request).getInt32(588, true);

/** struct gpio_v2_line_values for the request's first line. */
export function encodeLineValues(value: 0 | 1 = 0): Uint8Array {
  const b = new Uint8Array(LINE_VALUES_SIZE);
  view(b).setBigUint64(0, BigInt(value), true);
  view(b).setBigUint64(8, 1n, true);
  return b;
}

export const lineValueOf = (values: Uint8Array): 0 | 1 =>
  (view(values).getBigUint64(0, true) & 1n) === 1n ? 1 : 0;

/** Decodes every whole 48-byte struct gpio_v2_line_event in `b`. */
export function decodeLineEvents(b: Uint8Array): LineEvent[] {
  const v = view(b);
  const out: LineEvent[] = [];
  for (let at = 0; at + LINE_EVENT_SIZE <= b.length; at += LINE_EVENT_SIZE)
    out.push({
      timestampNs: v.getBigUint64(at, true),
      id: v.getUint32(at + 8, true),
      offset: v.getUint32(at + 12, true),
      seqno: v.getUint32(at + 16, true),
      lineSeqno: v.getUint32(at + 20, true),
    });
  return out;
}
