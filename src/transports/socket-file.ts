import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { closeFd, isSyscallError, peerCredentials, socketConnect } from '../native/index.ts';

/** A socket path another process is serving, or a file that is not a socket: nothing is removed. */
export class SocketInUseError extends Error {
  override name = 'SocketInUseError';
  constructor(
    readonly path: string,
    message: string,
    /** The serving process (SO_PEERCRED of a probe connection), when it answered. */
    readonly pid?: number,
  ) {
    super(message);
  }
}

/**
 * Removes a socket file left by an earlier run, and nothing else. A probe connection tells the
 * two apart: ECONNREFUSED means nobody listens (stale, removed); an answer means a live server,
 * refused with its pid. The probe is closed at once: the server sees a connection that ends.
 */
export function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket())
    throw new SocketInUseError(path, `${path} exists and is not a socket: not removing it`);
  let fd: number;
  try {
    fd = socketConnect(path);
  } catch (e) {
    if (isSyscallError(e, 'ECONNREFUSED')) {
      unlinkSync(path);
      return;
    }
    if (isSyscallError(e, 'ENOENT')) return; // removed meanwhile
    const code = isSyscallError(e) ? e.code : (e as Error).message;
    throw new SocketInUseError(path, `${path} exists and cannot be probed (${code}): not removing it`);
  }
  let pid: number | undefined;
  try {
    pid = peerCredentials(fd).pid;
  } finally {
    closeFd(fd);
  }
  throw new SocketInUseError(path, `${path} is in use by pid ${pid}`, pid);
}

/** A bind/listen failure that names the path, and for EACCES what to change. */
export function listenError(path: string, e: unknown): Error {
  const code = isSyscallError(e) ? e.code : ((e as { code?: unknown }).code ?? '');
  if (code === 'EACCES')
    return new Error(
      `cannot listen at ${path}: EACCES (no permission to create a file in its directory): ` +
        'choose a directory you can write, or run as a user (or group) that may',
    );
  if (code === 'EADDRINUSE') return new Error(`cannot listen at ${path}: EADDRINUSE (the path exists)`);
  return new Error(`cannot listen at ${path}: ${(e as Error).message}`);
}

/**
 * Creates a listening Unix socket file at `path` with `mode`: a stale socket is removed (a live
 * one is refused, see removeStaleSocket), and `bind` (which must create the file synchronously)
 * runs under umask 0177, so there is no window in which others could connect before the chmod.
 */
export function bindSocketFile<T>(path: string, mode: number, bind: () => T): T {
  removeStaleSocket(path);
  const umask = process.umask(0o177);
  let result: T;
  try {
    result = bind();
  } catch (e) {
    throw listenError(path, e);
  } finally {
    process.umask(umask);
  }
  // An asynchronous bind error (net.Server) leaves no file; the caller gets that error instead.
  if (existsSync(path)) chmodSync(path, mode);
  return result;
}
