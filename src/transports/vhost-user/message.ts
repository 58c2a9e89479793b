/** vhost-user wire format (QEMU docs/interop/vhost-user.rst): header, request ids, payload codecs. */

export const HEADER_SIZE = 12;
export const MAX_PAYLOAD = 4096;
export const MAX_FDS = 8;

export const Flag = { VERSION: 0x1, VERSION_MASK: 0x3, REPLY: 0x4, NEED_REPLY: 0x8 } as const;
/** Back-end replies carry exactly this (version 1 | REPLY); QEMU rejects anything else. */
export const REPLY_FLAGS = Flag.VERSION | Flag.REPLY;

export const Request = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  RESET_DEVICE: 34,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
} as const;

export const requestName = (id: number): string =>
  Object.entries(Request).find(([, v]) => v === id)?.[0] ?? `UNKNOWN(${id})`;

/** Virtio feature bit 30: the vhost-user protocol-feature handshake (never shown to the guest). */
export const PROTOCOL_FEATURES_BIT = 1n << 30n;

export const ProtocolFeature = {
  MQ: 0,
  LOG_SHMFD: 1,
  REPLY_ACK: 3,
  BACKEND_REQ: 5,
  CONFIG: 9,
  RESET_DEVICE: 13,
  CONFIGURE_MEM_SLOTS: 15,
  STATUS: 16,
} as const;

/** Bits 0–7: ring index; bit 8: no fd attached (polling). */
export const VRING_INDEX_MASK = 0xff;
export const VRING_NOFD = 0x100;

export interface Header {
  request: number;
  flags: number;
  size: number;
}

export function decodeHeader(b: Uint8Array): Header {
  const v = new DataView(b.buffer, b.byteOffset, HEADER_SIZE);
  return { request: v.getUint32(0, true), flags: v.getUint32(4, true), size: v.getUint32(8, true) };
}

export function encodeMessage(
  request: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE + payload.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, request, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, payload.length, true);
  b.set(payload, HEADER_SIZE);
  return b;
}

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

export function encodeU64(x: bigint): Uint8Array {
  const b = new Uint8Array(8);
  view(b).setBigUint64(0, BigInt.asUintN(64, x), true);
  return b;
}
export const decodeU64 = (b: Uint8Array): bigint => view(b).getBigUint64(0, true);

export interface VringState {
  index: number;
  num: number;
}
export function encodeVringState(s: VringState): Uint8Array {
  const b = new Uint8Array(8);
  view(b).setUint32(0, s.index, true);
  view(b).setUint32(4, s.num, true);
  return b;
}
export const decodeVringState = (b: Uint8Array): VringState => ({
  index: view(b).getUint32(0, true),
  num: view(b).getUint32(4, true),
});

export interface VringAddr {
  index: number;
  flags: number;
  desc: bigint;
  used: bigint;
  avail: bigint;
  log: bigint;
}
export const VRING_ADDR_SIZE = 40;
export function encodeVringAddr(a: VringAddr): Uint8Array {
  const b = new Uint8Array(VRING_ADDR_SIZE);
  const v = view(b);
  v.setUint32(0, a.index, true);
  v.setUint32(4, a.flags, true);
  v.setBigUint64(8, a.desc, true);
  v.setBigUint64(16, a.used, true);
  v.setBigUint64(24, a.avail, true);
  v.setBigUint64(32, a.log, true);
  return b;
}
export function decodeVringAddr(b: Uint8Array): VringAddr {
  const v = view(b);
  return {
    index: v.getUint32(0, true),
    flags: v.getUint32(4, true),
    desc: v.getBigUint64(8, true),
    used: v.getBigUint64(16, true),
    avail: v.getBigUint64(24, true),
    log: v.getBigUint64(32, true),
  };
}

export interface MemoryRegionDesc {
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  mmapOffset: bigint;
}
export const REGION_SIZE = 32;
export function encodeMemoryTable(regions: readonly MemoryRegionDesc[]): Uint8Array {
  const b = new Uint8Array(8 + REGION_SIZE * regions.length);
  const v = view(b);
  v.setUint32(0, regions.length, true);
  regions.forEach((r, i) => {
    const at = 8 + REGION_SIZE * i;
    v.setBigUint64(at, r.guestPhysAddr, true);
    v.setBigUint64(at + 8, r.memorySize, true);
    v.setBigUint64(at + 16, r.userspaceAddr, true);
    v.setBigUint64(at + 24, r.mmapOffset, true);
  });
  return b;
}
/** Returns null when the payload is shorter than its region count says. */
export function decodeMemoryTable(b: Uint8Array): MemoryRegionDesc[] | null {
  if (b.length < 8) return null;
  const v = view(b);
  const n = v.getUint32(0, true);
  if (b.length < 8 + REGION_SIZE * n) return null;
  return Array.from({ length: n }, (_, i) => {
    const at = 8 + REGION_SIZE * i;
    return {
      guestPhysAddr: v.getBigUint64(at, true),
      memorySize: v.getBigUint64(at + 8, true),
      userspaceAddr: v.getBigUint64(at + 16, true),
      mmapOffset: v.getBigUint64(at + 24, true),
    };
  });
}

export interface ConfigPayload {
  offset: number;
  size: number;
  flags: number;
  data: Uint8Array;
}
export const CONFIG_HEADER_SIZE = 12;
export function encodeConfigPayload(c: ConfigPayload): Uint8Array {
  const b = new Uint8Array(CONFIG_HEADER_SIZE + c.data.length);
  const v = view(b);
  v.setUint32(0, c.offset, true);
  v.setUint32(4, c.size, true);
  v.setUint32(8, c.flags, true);
  b.set(c.data, CONFIG_HEADER_SIZE);
  return b;
}
export function decodeConfigPayload(b: Uint8Array): ConfigPayload | null {
  if (b.length < CONFIG_HEADER_SIZE) return null;
  const v = view(b);
  return {
    offset: v.getUint32(0, true),
    size: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    data: b.subarray(CONFIG_HEADER_SIZE),
  };
}
