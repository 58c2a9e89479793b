/** A command line the CLI cannot act on: printed with a hint, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
