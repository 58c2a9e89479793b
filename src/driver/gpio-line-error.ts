/** Why the driver API refused a line operation: the errno libgpiod reports for the same case. */
export type GpioLineErrorCode =
  /** Bad argument: offset out of range or not in the request, no lines, inconsistent settings. */
  | 'EINVAL'
  /** The line is held by another request. */
  | 'EBUSY'
  /** A value written to a line that is not an output. */
  | 'EPERM'
  /** The line request was released, or the chip closed. */
  | 'EBADF'
  /** Edge detection asked of a device without interrupts (VIRTIO_GPIO_F_IRQ not negotiated). */
  | 'ENODEV';

/** A line operation refused by the driver before anything reached the device. */
export class GpioLineError extends Error {
  override readonly name = 'GpioLineError';

  constructor(
    readonly code: GpioLineErrorCode,
    message: string,
  ) {
    super(message);
  }
}
