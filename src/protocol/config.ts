import { CONFIG_SIZE } from './constants.ts';
import { ProtocolError } from './errors.ts';

/** virtio_gpio_config: le16 ngpio, 2 bytes padding, le32 gpio_names_size. */
export interface GpioConfig {
  ngpio: number;
  namesSize: number;
}

export function encodeConfig(c: GpioConfig): Uint8Array {
  const b = new Uint8Array(CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint16(0, c.ngpio, true);
  v.setUint32(4, c.namesSize, true);
  return b;
}

export function decodeConfig(b: Uint8Array): GpioConfig {
  if (b.length < CONFIG_SIZE)
    throw new ProtocolError('short', `config is ${b.length} bytes, need ${CONFIG_SIZE}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ngpio = v.getUint16(0, true);
  if (ngpio === 0) throw new ProtocolError('range', 'config ngpio is 0');
  return { ngpio, namesSize: v.getUint32(4, true) };
}
