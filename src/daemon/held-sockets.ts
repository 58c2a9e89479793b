import { lstatSync, readFileSync, readdirSync, readlinkSync, unlinkSync } from 'node:fs';
import { controlPathFor } from '../control/control-protocol.ts';
import {
  closeFd,
  closeQuietly,
  isSyscallError,
  recvMsg,
  sendMsg,
  socketListen,
  socketPair,
} from '../native/index.ts';
import { bindSocketFile } from '../transports/socket-file.ts';
import type { DeviceConfig } from './served-device.ts';
import type { WorkerDeviceConfig } from './worker-messages.ts';

/** A second descriptor for the same open socket (dup(2) through SCM_RIGHTS over a socket pair). */
export function duplicateFd(fd: number): number {
  const [a, b] = socketPair();
  try {
    sendMsg(a, new Uint8Array(1), [fd]);
    const r = recvMsg(b, 1, 1);
    const copy = r?.fds[0];
    if (copy === undefined) throw new Error(`cannot duplicate fd ${fd}`);
    return copy;
  } finally {
    closeFd(a);
    closeFd(b);
  }
}

/** Whether an fd is a listening socket (a zero-byte send: ENOTCONN), not a connected one. */
export function isListening(fd: number): boolean {
  try {
    sendMsg(fd, new Uint8Array(0));
    return false;
  } catch (e) {
    return isSyscallError(e, 'ENOTCONN');
  }
}

const inodeOf = (path: string): number | null => {
  try {
    const s = lstatSync(path);
    return s.isSocket() ? s.ino : null;
  } catch {
    return null;
  }
};

/**
 * A worker device's listening sockets, bound on the main thread: a worker thread cannot set the
 * umask that bindSocketFile creates socket files under, and the main thread outlives workers.
 * The vhost-user socket is held here for the daemon's life (a worker gets a duplicate, so a worker
 * that dies takes nothing a new one needs); the control socket is the worker's (it closes it) and
 * is bound again for a new worker. The live-socket refusal (src/transports/socket-file.ts) applies
 * to each path at the first bind; the files are removed at close only while they are still ours.
 */
export class HeldSockets {
  private readonly deviceFd: number | null;
  private readonly deviceIno: number | null;
  /** A connected front-end handed over on --fd: given to one worker only. */
  private readonly connectedFd: number | null;
  private controlIno: number | null = null;
  /** An inherited listening --fd goes to the first worker as it is (its number shows in status). */
  private inheritedGiven = false;
  readonly controlPath: string | undefined;

  constructor(readonly config: DeviceConfig) {
    const mode = config.socketMode ?? 0o600;
    this.controlPath = config.control ?? (config.socket ? controlPathFor(config.socket) : undefined);
    if (config.fd !== undefined) {
      const listening = isListening(config.fd);
      this.deviceFd = listening ? duplicateFd(config.fd) : null;
      this.connectedFd = listening ? null : config.fd;
      this.deviceIno = null;
    } else if (config.socket) {
      const path = config.socket;
      this.deviceFd = bindSocketFile(path, mode, () => socketListen(path, 4));
      this.deviceIno = inodeOf(path);
      this.connectedFd = null;
    } else {
      throw new Error('a device needs a socket path or an fd');
    }
  }

  /** Whether a new worker can serve this device again (not a connected --fd front-end). */
  get restartable(): boolean {
    return this.connectedFd === null;
  }

  /** The config a (new) worker serves: a duplicate of the device socket, a freshly bound control socket. */
  forWorker(): WorkerDeviceConfig {
    const { simulated: _, ...config } = this.config;
    let fd: number;
    if (this.deviceFd === null) fd = this.connectedFd as number;
    else if (this.config.fd !== undefined && !this.inheritedGiven) fd = this.config.fd;
    else fd = duplicateFd(this.deviceFd);
    this.inheritedGiven = true;
    if (!this.controlPath) return { ...config, fd };
    const path = this.controlPath;
    // Ours from an earlier worker (one that died may have left it): removed, as bindSocketFile would
    // a stale one. Only the first bind meets another process's live socket, and is refused then.
    if (this.controlIno !== null && inodeOf(path) === this.controlIno) unlinkSync(path);
    let controlFd: number;
    try {
      controlFd = bindSocketFile(path, config.socketMode ?? 0o600, () => socketListen(path, 16));
    } catch (e) {
      if (this.deviceFd !== null && fd !== this.config.fd) closeQuietly(fd);
      throw e;
    }
    this.controlIno = inodeOf(path);
    return { ...config, fd, control: path, controlFd };
  }

  /**
   * Closes the front-end connections a worker that died without closing left open in this process:
   * the sockets accepted on the device's path (/proc/net/unix names them with the listener's path).
   * The front-end then sees its session end, as when a back-end process dies. Returns how many.
   */
  closeLeftSessions(): number {
    const path = this.config.socket;
    if (!path || this.config.fd !== undefined) return 0;
    const inodes = new Set<string>();
    try {
      for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
        // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = __SO_ACCEPTCON (listening)
        const f = line.trim().split(/\s+/);
        if (f[7] === path && (parseInt(f[3], 16) & 0x10000) === 0) inodes.add(f[6]);
      }
    } catch {
      return 0;
    }
    let closed = 0;
    for (const fd of readdirSync('/proc/self/fd')) {
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue; // the directory's own fd, or closed meanwhile
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1])) {
        closeQuietly(Number(fd));
        closed++;
      }
    }
    return closed;
  }

  /** Stops listening and removes the socket files this daemon created (after the worker closed). */
  close(): void {
    if (this.deviceFd !== null) closeQuietly(this.deviceFd);
    const remove = (path: string | undefined, ino: number | null) => {
      if (path && ino !== null && inodeOf(path) === ino) unlinkSync(path);
    };
    if (this.config.fd === undefined) remove(this.config.socket, this.deviceIno);
    remove(this.controlPath, this.controlIno);
  }
}
