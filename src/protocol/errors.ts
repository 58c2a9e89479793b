/** A wire structure that does not decode: wrong size, unknown code, out-of-range field. */
export class ProtocolError extends Error {
  constructor(
    readonly kind: 'short' | 'size' | 'type' | 'range' | 'names',
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}
