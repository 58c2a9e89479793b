// virtio 1.2 §5.18 GPIO device: identifiers and message codes.
import { codeName } from '../virtio/code-name.ts';
import { VirtioFeature, bit } from '../virtio/feature-bits.ts';

export { bit };

export const VIRTIO_ID_GPIO = 41;
export const REQUEST_QUEUE = 0;
export const EVENT_QUEUE = 1;

/** Feature bits (bit numbers): the device's own (virtio 1.2 §5.18.3) and the shared ones it uses. */
export const Feature = {
  GPIO_F_IRQ: 0,
  ...VirtioFeature,
} as const;

export const MessageType = {
  GET_LINE_NAMES: 0x0001,
  GET_DIRECTION: 0x0002,
  SET_DIRECTION: 0x0003,
  GET_VALUE: 0x0004,
  SET_VALUE: 0x0005,
  SET_IRQ_TYPE: 0x0006,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const Status = { OK: 0x00, ERR: 0x01 } as const;
export type Status = (typeof Status)[keyof typeof Status];

export const Direction = { NONE: 0x00, OUT: 0x01, IN: 0x02 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

export const IrqType = {
  NONE: 0x00,
  EDGE_RISING: 0x01,
  EDGE_FALLING: 0x02,
  EDGE_BOTH: 0x03,
  LEVEL_HIGH: 0x04,
  LEVEL_LOW: 0x08,
} as const;
export type IrqType = (typeof IrqType)[keyof typeof IrqType];

export const IrqStatus = { INVALID: 0x00, VALID: 0x01 } as const;
export type IrqStatus = (typeof IrqStatus)[keyof typeof IrqStatus];

export const REQUEST_SIZE = 8;
export const RESPONSE_SIZE = 2;
export const IRQ_REQUEST_SIZE = 2;
export const IRQ_RESPONSE_SIZE = 1;
export const CONFIG_SIZE = 8;

export const messageTypeName = (v: number): string => codeName(MessageType, v);
export const directionName = (v: number): string => codeName(Direction, v);
export const irqTypeName = (v: number): string => codeName(IrqType, v);

export const isDirection = (v: number): v is Direction => v === 0 || v === 1 || v === 2;
export const isIrqType = (v: number): v is IrqType => Object.values(IrqType).includes(v as IrqType);
export const isEdgeType = (t: IrqType): boolean => (t & IrqType.EDGE_BOTH) !== 0;
export const isLevelType = (t: IrqType): boolean => t === IrqType.LEVEL_HIGH || t === IrqType.LEVEL_LOW;
