// `vgpio`: everything that runs in-process. Nothing imported from here loads the native addon;
// vhost-user (which needs it) is `vgpio/vhost-user`, the daemon's control client `vgpio/control`,
// the conformance suite `vgpio/conformance`.
export * from './protocol/index.ts';
export * from './virtqueue/index.ts';
export type { VirtioDevice } from './virtio/virtio-device.ts';
export type { VirtioDriverTransport, ActiveRings } from './virtio/driver-transport.ts';
export * from './device/line-backend.ts';
export * from './device/simulated-lines.ts';
export * from './device/line-state.ts';
export * from './device/gpio-device.ts';
export * from './device/device-events.ts';
export * from './device/virtio-gpio-device.ts';
export * from './driver/gpio-driver.ts';
export * from './driver/chip.ts';
export * from './driver/line-request.ts';
export * from './driver/line-settings.ts';
export * from './driver/gpio-line-error.ts';
export type { EdgeEvent } from './driver/edge-event.ts';
export * from './transports/loopback/loopback-transport.ts';
export * from './compose/loopback-chip.ts';
export * from './compose/loopback-board.ts';
export { Board, BoardError, type BoardLog } from './board/board.ts';
export { BoardLines, BoardDrivenError } from './board/board-lines.ts';
export type { BoardSpec, PeripheralSpec } from './board/board-schema.ts';
export type { Peripheral, PeripheralIo } from './board/peripheral-io.ts';
export type { Scheduled } from './board/board-scheduler.ts';
