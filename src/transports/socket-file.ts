import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';

/** Removes a socket file left by an earlier run; refuses to remove anything that is not a socket. */
export function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
  unlinkSync(path);
}

/**
 * Creates a listening Unix socket file at `path` with `mode`: a stale socket is removed, and
 * `bind` (which must create the file synchronously) runs under umask 0177, so there is no window
 * in which others could connect before the final chmod.
 */
export function bindSocketFile<T>(path: string, mode: number, bind: () => T): T {
  removeStaleSocket(path);
  const umask = process.umask(0o177);
  let result: T;
  try {
    result = bind();
  } finally {
    process.umask(umask);
  }
  // An asynchronous bind error (net.Server) leaves no file; the caller gets that error instead.
  if (existsSync(path)) chmodSync(path, mode);
  return result;
}
