import { rmSync } from 'node:fs';
import { FdPoller, closeFd, socketAccept, socketListen } from '../../src/native/index.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { VhostUserBackend } from '../../src/transports/vhost-user/backend.ts';
import type { VirtioDevice } from '../../src/virtio/virtio-device.ts';

/**
 * Serves a device the way rust-vmm's vhost-device-gpio does: when a front-end connects, the
 * listener is dropped and its socket file removed; 5–20 ms after the front-end leaves, the socket
 * is bound again. A front-end that reconnects at once finds no socket (ENOENT).
 */
export class RecreatingServer {
  private listenFd: number | null = null;
  private poller: FdPoller | null = null;
  private session: VhostUserBackend | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Connections served, and times the socket was bound again after one. */
  connections = 0;
  rebinds = 0;

  constructor(
    readonly socketPath: string,
    private readonly device: VirtioDevice,
  ) {
    this.listen();
  }

  private listen(): void {
    const fd = socketListen(this.socketPath, 4);
    this.listenFd = fd;
    this.poller = new FdPoller(fd, (err) => {
      if (!err) this.accept();
    });
    this.poller.start(true, false);
  }

  private stopListening(): void {
    this.poller?.close();
    this.poller = null;
    if (this.listenFd !== null) closeFd(this.listenFd);
    this.listenFd = null;
    rmSync(this.socketPath, { force: true });
  }

  private accept(): void {
    if (this.listenFd === null) return;
    const fd = socketAccept(this.listenFd);
    if (fd === null) return;
    this.stopListening();
    this.connections++;
    const s = new VhostUserBackend(fd, this.device, silentLogger);
    this.session = s;
    s.onClosed(() => {
      this.session = null;
      if (this.closed) return;
      this.timer = setTimeout(
        () => {
          this.timer = null;
          this.rebinds++;
          this.listen();
        },
        5 + Math.random() * 15,
      );
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.session?.close('server shutting down');
    this.stopListening();
  }
}
