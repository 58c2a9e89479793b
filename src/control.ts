// `vgpio/control`: a client for a running daemon's control endpoint (newline-delimited JSON over
// the Unix socket PATH.ctl, docs/control-protocol.md). Needs no native addon.
export * from './control/control-client.ts';
export {
  CONTROL_PROTOCOL_VERSION,
  EVENT_TYPES,
  controlPathFor,
  type ButtonState,
  type ClockAction,
  type ClockState,
  type EncoderState,
  type PeripheralState,
  type ControlEvent,
  type ControlReply,
  type ControlRequest,
  type DeviceStatus,
  type ErrorCode,
  type EventType,
  type LevelName,
  type LineRef,
  type LineStatus,
} from './control/control-protocol.ts';
