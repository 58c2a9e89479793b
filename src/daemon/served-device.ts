import { GpioDevice } from '../device/gpio-device.ts';
import type { LineBackend } from '../device/line-backend.ts';
import { SimulatedLines } from '../device/simulated-lines.ts';
import { HostChipLines } from '../hostchip/host-chip-lines.ts';
import { nativeChipIo } from '../hostchip/native-chip-io.ts';
import { VirtioGpioDevice } from '../device/virtio-gpio-device.ts';
import { ControlServer } from '../control/control-server.ts';
import { controlPathFor } from '../control/control-protocol.ts';
import type { Logger } from '../log/logger.ts';
import { isSyscallError, sendMsg } from '../native/index.ts';
import { VhostUserBackend } from '../transports/vhost-user/backend.ts';
import { VhostUserServer } from '../transports/vhost-user/server.ts';
import { newCounters } from '../transports/vhost-user/counters.ts';
import type { DescriptorChain } from '../virtqueue/descriptor-chain.ts';

export interface DeviceConfig {
  /** vhost-user socket path (served exactly as given). */
  socket?: string;
  /** Or a socket fd handed over by the parent (listening, or already connected). */
  fd?: number;
  lines: number;
  names?: string[];
  /** Socket file mode for the vhost-user and control sockets (default 0o600). */
  socketMode?: number;
  /** Control socket path (default SOCKET.ctl; required with fd). */
  control?: string;
  /** Busy polling per ring after its last request, in µs (vgpio serve --poll-us; 0 or absent: off). */
  pollUs?: number;
  /** Serve a host GPIO chip's lines (chip offsets `lines`, default all) instead of simulated ones. */
  chip?: { path: string; lines?: number[] };
  /** The control socket, already listening at `control` (bound by the main thread for a worker). */
  controlFd?: number;
  /** `vgpio serve --workers N`: the worker thread (0..N-1) this device is served from. */
  worker?: number;
  /** Serve these simulated lines (a board's, src/board) instead of fresh ones. */
  simulated?: SimulatedLines;
}

/**
 * One simulated GPIO chip served over vhost-user, with its control endpoint. Line state
 * lives here, so it survives front-ends coming and going.
 */
export class ServedDevice {
  /** The simulated wires; null when the device serves a host chip. */
  readonly lines: SimulatedLines | null;
  readonly hostChip: HostChipLines | null;
  readonly gpio: GpioDevice<DescriptorChain>;
  readonly virtio: VirtioGpioDevice;
  private server: VhostUserServer | null = null;
  private direct: VhostUserBackend | null = null;
  private control: ControlServer<DescriptorChain> | null = null;
  private connected = false;

  private constructor(
    readonly config: DeviceConfig,
    private readonly log: Logger,
  ) {
    let backend: LineBackend;
    if (config.chip) {
      this.lines = null;
      this.hostChip = HostChipLines.open({
        path: config.chip.path,
        lines: config.chip.lines,
        io: nativeChipIo,
        log: (l, m, f) => log.log(l, m, f),
      });
      backend = this.hostChip;
      this.hostChip.onGone((reason) => {
        if (this.gpio.events.active) this.gpio.events.device({ type: 'chip-gone', reason });
      });
    } else {
      this.hostChip = null;
      this.lines = config.simulated ?? new SimulatedLines(config.lines, config.names);
      backend = this.lines;
    }
    this.gpio = new GpioDevice<DescriptorChain>(backend, { log: (l, m) => log.log(l, m) });
    this.virtio = new VirtioGpioDevice(this.gpio, { log: (l, m) => log.log(l, m) });
  }

  static async start(
    config: DeviceConfig,
    log: Logger,
    onExit?: (reason: string) => void,
  ): Promise<ServedDevice> {
    const d = new ServedDevice(config, log);
    const mode = config.socketMode ?? 0o600;
    const controlPath = config.control ?? (config.socket ? controlPathFor(config.socket) : undefined);
    if (config.fd !== undefined) {
      // A zero-byte send tells the two apart without side effects: ENOTCONN on a listening socket,
      // 0 on a connected one. (Probing with accept would take, and lose, a front-end that is
      // already waiting in the backlog, and blocks on a blocking socket.)
      let listening = false;
      try {
        sendMsg(config.fd, new Uint8Array(0));
      } catch (e) {
        listening = isSyscallError(e, 'ENOTCONN');
      }
      if (listening)
        d.server = new VhostUserServer(d.virtio, {
          listenFd: config.fd,
          log,
          onSession: d.onSession,
          pollUs: config.pollUs,
        });
      else {
        d.direct = new VhostUserBackend(config.fd, d.virtio, log, d.directCounters, {
          pollUs: config.pollUs,
        });
        d.connected = true;
        d.direct.onClosed((reason) => {
          d.connected = false;
          d.onSession(false, reason);
          log.log('info', 'front-end disconnected', { reason });
          onExit?.(reason);
        });
      }
    } else if (config.socket) {
      d.server = new VhostUserServer(d.virtio, {
        socketPath: config.socket,
        socketMode: mode,
        log,
        onSession: d.onSession,
        pollUs: config.pollUs,
      });
    } else {
      throw new Error('a device needs a socket path or an fd');
    }
    if (controlPath) {
      try {
        d.control = await ControlServer.listen(
          controlPath,
          { device: d.gpio, lines: d.lines, status: () => d.status() },
          log,
          mode,
          config.controlFd,
        );
      } catch (e) {
        // The device socket is already listening: take it down again, or its file would be left behind.
        await d.close();
        throw e;
      }
      log.log('info', 'control endpoint listening', { control: controlPath });
    } else {
      log.log('warn', 'no control endpoint: give a control socket path to drive lines from the CLI');
    }
    return d;
  }

  /** Front-ends coming and going, into the device's event stream. */
  private readonly onSession = (connected: boolean, reason?: string): void => {
    const events = this.gpio.events;
    if (!events.active) return;
    if (connected) events.device({ type: 'connected' });
    else events.device({ type: 'disconnected', reason: reason ?? 'closed' });
  };

  /** The control endpoint, if the device has one (in-process surfaces ask it, as clients would). */
  get controlServer(): ControlServer<DescriptorChain> | null {
    return this.control;
  }

  /** The control socket path, if the device has one. */
  get controlPath(): string | undefined {
    return this.control?.path;
  }

  /** Counts for a front-end handed over on an fd (a server keeps its own). */
  private readonly directCounters = newCounters();

  private status() {
    const connected = this.server ? this.server.connected : this.connected;
    const counters = this.server ? this.server.counters : this.directCounters;
    // The device keeps the last front-end's features after it leaves: report them only while connected.
    const f = connected ? this.virtio.negotiated : 0n;
    return {
      socket: this.config.socket ?? `fd:${this.config.fd}`,
      pid: process.pid,
      connected,
      features: f === 0n ? null : `0x${f.toString(16)}`,
      irqNegotiated: connected && this.virtio.irqNegotiated,
      frontend: { ...counters, malformedQueues: this.virtio.malformedQueues },
      ...(this.hostChip ? { chip: { path: this.hostChip.path, state: this.hostChip.state } } : {}),
    };
  }

  async close(): Promise<void> {
    this.server?.close();
    this.direct?.close('shutting down');
    await this.control?.close();
    this.lines?.close();
    this.hostChip?.close();
  }
}
