import type { Logger } from '../../log/logger.ts';
import { FdPoller, closeQuietly, socketAccept, socketListen } from '../../native/index.ts';
import type { VirtioDevice } from '../../virtio/virtio-device.ts';
import { bindSocketFile, removeStaleSocket } from '../socket-file.ts';
import { VhostUserBackend } from './backend.ts';
import { newCounters, type VhostUserCounters } from './counters.ts';

export interface VhostUserServerOptions {
  /** Listen on this path (exactly; nothing is appended). */
  socketPath?: string;
  /** Or on an already-listening socket fd (QEMU's --fd convention). */
  listenFd?: number;
  /** Socket file mode (default 0o600). */
  socketMode?: number;
  log: Logger;
  /** Told when a front-end connects, and when it goes away (with why). */
  onSession?: (connected: boolean, reason?: string) => void;
  /** Busy polling after each kick (VhostUserBackendOptions.pollUs). */
  pollUs?: number;
}

/**
 * Serves one VirtioDevice to one vhost-user front-end at a time. When the front-end goes away
 * the device keeps its state and the server accepts the next one.
 */
export class VhostUserServer {
  private readonly listenFd: number;
  private readonly poller: FdPoller;
  private session: VhostUserBackend | null = null;
  private closed = false;
  readonly socketPath: string | null;
  /** Exact counts over every front-end this server has served. */
  readonly counters: VhostUserCounters = newCounters();

  constructor(
    private readonly device: VirtioDevice,
    private readonly opts: VhostUserServerOptions,
  ) {
    this.socketPath = opts.socketPath ?? null;
    if (opts.listenFd !== undefined) {
      this.listenFd = opts.listenFd;
    } else if (opts.socketPath) {
      const path = opts.socketPath;
      this.listenFd = bindSocketFile(path, opts.socketMode ?? 0o600, () => socketListen(path, 4));
    } else {
      throw new Error('VhostUserServer needs socketPath or listenFd');
    }
    this.poller = new FdPoller(this.listenFd, (err) => {
      if (err) return this.opts.log.log('error', 'listening socket error', { error: err.message });
      this.accept();
    });
    this.poller.start(true, false);
    opts.log.log('info', 'listening', { socket: this.socketPath ?? `fd:${this.listenFd}` });
  }

  get connected(): boolean {
    return this.session !== null;
  }

  private accept(): void {
    for (;;) {
      let fd: number | null;
      try {
        fd = socketAccept(this.listenFd);
      } catch (e) {
        this.opts.log.log('warn', 'accept failed', { error: (e as Error).message });
        return;
      }
      if (fd === null) return;
      if (this.session || this.closed) {
        this.opts.log.log('warn', 'a front-end is already connected: refusing another');
        closeQuietly(fd);
        continue;
      }
      this.opts.log.log('info', 'front-end connected');
      const s = new VhostUserBackend(fd, this.device, this.opts.log, this.counters, {
        pollUs: this.opts.pollUs,
      });
      this.session = s;
      // One front-end at a time: the next one waits in the listen backlog (its connect has
      // succeeded) until this session ends, instead of being refused while a close is in flight.
      this.poller.stop();
      this.opts.onSession?.(true);
      s.onClosed((reason) => {
        if (this.session === s) this.session = null;
        this.opts.log.log('info', 'front-end disconnected; listening again', { reason });
        this.opts.onSession?.(false, reason);
        if (!this.closed) this.poller.start(true, false);
      });
      return;
    }
  }

  /** Ends the session, stops listening and removes the socket file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.session?.close('server shutting down');
    this.poller.close();
    closeQuietly(this.listenFd);
    if (this.socketPath) removeStaleSocket(this.socketPath);
  }
}
