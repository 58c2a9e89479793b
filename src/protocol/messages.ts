import {
  IRQ_REQUEST_SIZE,
  IRQ_RESPONSE_SIZE,
  IrqStatus,
  REQUEST_SIZE,
  RESPONSE_SIZE,
  Status,
  type MessageType,
} from './constants.ts';
import { ProtocolError } from './errors.ts';

/** requestq request: le16 type, le16 gpio, le32 value. */
export interface GpioRequest {
  type: number;
  gpio: number;
  value: number;
}

/** requestq response: u8 status, then u8 value (or the names block for GET_LINE_NAMES). */
export interface GpioResponse {
  status: Status;
  value: number;
}

export function encodeRequest(r: { type: MessageType | number; gpio: number; value: number }): Uint8Array {
  // Little-endian by hand: a DataView per request would be a second allocation.
  const b = new Uint8Array(REQUEST_SIZE);
  const value = r.value >>> 0;
  b[0] = r.type & 0xff;
  b[1] = (r.type >>> 8) & 0xff;
  b[2] = r.gpio & 0xff;
  b[3] = (r.gpio >>> 8) & 0xff;
  b[4] = value & 0xff;
  b[5] = (value >>> 8) & 0xff;
  b[6] = (value >>> 16) & 0xff;
  b[7] = value >>> 24;
  return b;
}

export function decodeRequest(b: Uint8Array): GpioRequest {
  if (b.length < REQUEST_SIZE)
    throw new ProtocolError('short', `request is ${b.length} bytes, need ${REQUEST_SIZE}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { type: v.getUint16(0, true), gpio: v.getUint16(2, true), value: v.getUint32(4, true) };
}

export function encodeResponse(r: GpioResponse): Uint8Array {
  return Uint8Array.of(r.status, r.value & 0xff);
}

export function decodeResponse(b: Uint8Array, usedLen: number): GpioResponse {
  if (usedLen !== RESPONSE_SIZE || b.length < RESPONSE_SIZE)
    throw new ProtocolError('size', `response used length ${usedLen}, expected ${RESPONSE_SIZE}`);
  const status = b[0];
  if (status !== Status.OK && status !== Status.ERR)
    throw new ProtocolError('range', `response status ${status}`);
  return { status, value: b[1] };
}

/** eventq request: le16 gpio. */
export function encodeIrqRequest(gpio: number): Uint8Array {
  const b = new Uint8Array(IRQ_REQUEST_SIZE);
  b[0] = gpio & 0xff;
  b[1] = (gpio >>> 8) & 0xff;
  return b;
}

export function decodeIrqRequest(b: Uint8Array): number {
  if (b.length < IRQ_REQUEST_SIZE)
    throw new ProtocolError('short', `irq request is ${b.length} bytes, need ${IRQ_REQUEST_SIZE}`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(0, true);
}

/** eventq response: u8 status (INVALID 0, VALID 1); used length must be exactly 1. */
export function decodeIrqResponse(b: Uint8Array, usedLen: number): IrqStatus {
  if (usedLen !== IRQ_RESPONSE_SIZE || b.length < IRQ_RESPONSE_SIZE)
    throw new ProtocolError('size', `irq response used length ${usedLen}, expected ${IRQ_RESPONSE_SIZE}`);
  if (b[0] !== IrqStatus.INVALID && b[0] !== IrqStatus.VALID)
    throw new ProtocolError('range', `irq response status ${b[0]}`);
  return b[0];
}
