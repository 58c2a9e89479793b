/** vhost-user wire format (QEMU docs/interop/vhost-user.rst): header, request ids, payload codecs. */
import { bit } from '../../virtio/feature-bits.ts';
import { codeName } from '../../virtio/code-name.ts';
import { ByteReader, ByteWriter } from './byte-cursor.ts';

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

export const requestName = (id: number): string => codeName(Request, id, (c) => `UNKNOWN(${c})`);

/** Virtio feature bit 30: the vhost-user protocol-feature handshake (never shown to the guest). */
export const PROTOCOL_FEATURES_BIT = bit(30);

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
  const r = new ByteReader(b.subarray(0, HEADER_SIZE));
  return { request: r.u32(), flags: r.u32(), size: r.u32() };
}

export function encodeMessage(
  request: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  return new ByteWriter(HEADER_SIZE + payload.length)
    .u32(request)
    .u32(flags)
    .u32(payload.length)
    .bytesOf(payload)
    .done();
}

export const encodeU64 = (x: bigint): Uint8Array => new ByteWriter(8).u64(x).done();
export const decodeU64 = (b: Uint8Array): bigint => new ByteReader(b).u64();

export interface VringState {
  index: number;
  num: number;
}
export const encodeVringState = (s: VringState): Uint8Array =>
  new ByteWriter(8).u32(s.index).u32(s.num).done();
export function decodeVringState(b: Uint8Array): VringState {
  const r = new ByteReader(b);
  return { index: r.u32(), num: r.u32() };
}

export interface VringAddr {
  index: number;
  flags: number;
  desc: bigint;
  used: bigint;
  avail: bigint;
  log: bigint;
}
export const VRING_ADDR_SIZE = 40;
export const encodeVringAddr = (a: VringAddr): Uint8Array =>
  new ByteWriter(VRING_ADDR_SIZE)
    .u32(a.index)
    .u32(a.flags)
    .u64(a.desc)
    .u64(a.used)
    .u64(a.avail)
    .u64(a.log)
    .done();
export function decodeVringAddr(b: Uint8Array): VringAddr {
  const r = new ByteReader(b);
  return { index: r.u32(), flags: r.u32(), desc: r.u64(), used: r.u64(), avail: r.u64(), log: r.u64() };
}

export interface MemoryRegionDesc {
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  mmapOffset: bigint;
}
export const REGION_SIZE = 32;
/** The region count and its padding before the regions. */
export const MEMORY_TABLE_HEADER_SIZE = 8;
export function encodeMemoryTable(regions: readonly MemoryRegionDesc[]): Uint8Array {
  const w = new ByteWriter(MEMORY_TABLE_HEADER_SIZE + REGION_SIZE * regions.length)
    .u32(regions.length)
    .u32(0);
  for (const r of regions) w.u64(r.guestPhysAddr).u64(r.memorySize).u64(r.userspaceAddr).u64(r.mmapOffset);
  return w.done();
}
/** Returns null when the payload is shorter than its region count says. */
export function decodeMemoryTable(b: Uint8Array): MemoryRegionDesc[] | null {
  if (b.length < MEMORY_TABLE_HEADER_SIZE) return null;
  const r = new ByteReader(b);
  const n = r.u32();
  r.u32(); // padding
  if (r.remaining < REGION_SIZE * n) return null;
  return Array.from({ length: n }, () => ({
    guestPhysAddr: r.u64(),
    memorySize: r.u64(),
    userspaceAddr: r.u64(),
    mmapOffset: r.u64(),
  }));
}

export interface ConfigPayload {
  offset: number;
  size: number;
  flags: number;
  data: Uint8Array;
}
export const CONFIG_HEADER_SIZE = 12;
export const encodeConfigPayload = (c: ConfigPayload): Uint8Array =>
  new ByteWriter(CONFIG_HEADER_SIZE + c.data.length)
    .u32(c.offset)
    .u32(c.size)
    .u32(c.flags)
    .bytesOf(c.data)
    .done();
export function decodeConfigPayload(b: Uint8Array): ConfigPayload | null {
  if (b.length < CONFIG_HEADER_SIZE) return null;
  const r = new ByteReader(b);
  return { offset: r.u32(), size: r.u32(), flags: r.u32(), data: r.rest() };
}
