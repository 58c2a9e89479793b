import { ControlClient } from '../control/control-client.ts';
import type { ClockAction, ControlEvent, DeviceStatus } from '../control/control-protocol.ts';
import type { ButtonAction, DeviceLink } from '../dashboard/dashboard-server.ts';

/** How often a link whose device worker went away tries its control socket again. */
const RETRY_MS = 200;

interface Subscription {
  listener: (e: ControlEvent) => void;
  onEnd?: (error: Error | null) => void;
  stop: (() => void) | null;
}

/**
 * A device served by a worker thread of this daemon, for `serve --http` and `--trace`: the device's
 * control socket, as `vgpio dashboard` reaches a daemon. When the worker dies the connection ends;
 * the link connects again once a new worker serves the device, and its subscribers keep receiving
 * events (a restarted device starts from fresh line state; the next status shows it).
 */
export class WorkerDeviceLink implements DeviceLink {
  private client: ControlClient | null;
  private readonly subs = new Set<Subscription>();
  private retry: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    private readonly devicePath: string,
    private readonly controlPath: string | undefined,
    client: ControlClient,
  ) {
    this.client = client;
    this.watchClose(client);
  }

  static async connect(devicePath: string, controlPath?: string): Promise<WorkerDeviceLink> {
    return new WorkerDeviceLink(
      devicePath,
      controlPath,
      await ControlClient.connect(devicePath, { controlPath }),
    );
  }

  private watchClose(client: ControlClient): void {
    client.onClose((error) => {
      if (this.client === client) this.client = null;
      if (error && !this.closed) this.reconnect();
    });
  }

  private reconnect(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      ControlClient.connect(this.devicePath, { controlPath: this.controlPath, timeoutMs: 2000 }).then(
        async (client) => {
          if (this.closed) return client.close();
          this.client = client;
          this.watchClose(client);
          for (const s of this.subs) await this.attach(client, s).catch(() => {});
        },
        () => this.reconnect(),
      );
    }, RETRY_MS);
    this.retry.unref();
  }

  private async attach(client: ControlClient, s: Subscription) {
    const start = await client.subscribe(s.listener);
    s.stop = start.stop;
    return start;
  }

  private current(): ControlClient {
    if (!this.client) throw new Error(`${this.devicePath}: its device worker is being replaced`);
    return this.client;
  }

  async subscribe(
    listener: (e: ControlEvent) => void,
    onEnd?: (error: Error | null) => void,
  ): Promise<{ status: DeviceStatus; timeNs: bigint; stop: () => void }> {
    const s: Subscription = { listener, onEnd, stop: null };
    const start = await this.attach(this.current(), s);
    this.subs.add(s);
    return {
      status: start.status,
      timeNs: start.timeNs,
      stop: () => {
        this.subs.delete(s);
        s.stop?.();
      },
    };
  }

  async status(): Promise<DeviceStatus> {
    return this.current().status();
  }

  async setInput(line: number, value: 0 | 1): Promise<void> {
    return this.current().setInput(line, value);
  }

  async pulse(line: number, widthMs: number): Promise<void> {
    return this.current().pulse(line, widthMs);
  }

  async button(line: number, action: ButtonAction): Promise<void> {
    return this.current().button(line, action, action === 'click' ? 50 : undefined);
  }

  async clock(line: number, action: ClockAction): Promise<unknown> {
    return this.current().clock(line, action);
  }

  async encoder(line: number, position: number): Promise<unknown> {
    return this.current().encoder(line, position);
  }

  /** Ends the connection; subscribers are told the stream ended. */
  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.client?.close();
    for (const s of this.subs) s.onEnd?.(null);
    this.subs.clear();
  }
}
