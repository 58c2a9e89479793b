import { GpioDriver } from '../driver/gpio-driver.ts';
import { getCpu } from '../native/index.ts';
import { Direction, VIRTIO_ID_GPIO } from '../protocol/constants.ts';
import { VhostUserFrontend } from '../transports/vhost-user/frontend.ts';

/** Which front-end drives the back-ends: the C one (native/bench-frontend.c) or our Node driver. */
export type FrontendKind = 'c' | 'node';

export interface RoundTrips {
  /** One GET_VALUE round trip each, in µs. */
  samplesUs: number[];
  /** The front-end's own CPU time over them, in ns. */
  cpuNs: number;
}

export interface InFlightRun {
  requests: number;
  /** Wall time from the first request made available to the last reply, in ns. */
  ns: number;
  cpuNs: number;
}

/** A vhost-user-gpio front-end the bench measures a back-end through (requestq only). */
export interface BenchFrontend {
  readonly kind: FrontendKind;
  readonly ngpio: number;
  /** SET_DIRECTION IN on lines 0..lines-1, as a guest requesting them as inputs does. */
  setInputs(lines: number): Promise<void>;
  /** `n` GET_VALUE requests on line 0, one at a time. */
  roundTrips(n: number): Promise<RoundTrips>;
  /** About `requests` GET_VALUE requests on lines 0..lines-1, one per line in flight at all times. */
  inFlight(lines: number, requests: number): Promise<InFlightRun>;
  /** Stops the rings and disconnects. */
  close(): Promise<void>;
  /** The CPU the front-end last ran on, known once closed (null before). */
  readonly lastCpu: number | null;
}

const cpuNs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) * 1000;
};

/** Our Node driver over our Node vhost-user front-end: what a JavaScript guest side costs. */
export class NodeBenchFrontend implements BenchFrontend {
  readonly kind = 'node';
  lastCpu: number | null = null;

  private constructor(private readonly driver: GpioDriver) {}

  static async open(socket: string): Promise<NodeBenchFrontend> {
    const transport = await VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO, { timeoutMs: 5000 });
    return new NodeBenchFrontend(await GpioDriver.open(transport));
  }

  get ngpio(): number {
    return this.driver.ngpio;
  }

  async setInputs(lines: number): Promise<void> {
    for (let line = 0; line < lines; line++) await this.driver.setDirection(line, Direction.IN);
  }

  async roundTrips(n: number): Promise<RoundTrips> {
    const samplesUs: number[] = [];
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await this.driver.getValue(0);
      samplesUs.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return { samplesUs, cpuNs: cpuNs(c0) };
  }

  async inFlight(lines: number, requests: number): Promise<InFlightRun> {
    const per = Math.max(1, Math.ceil(requests / lines));
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const loops: Promise<void>[] = [];
    for (let line = 0; line < lines; line++)
      loops.push(
        (async () => {
          for (let i = 0; i < per; i++) await this.driver.getValue(line);
        })(),
      );
    await Promise.all(loops);
    return { requests: per * lines, ns: Number(process.hrtime.bigint() - t0), cpuNs: cpuNs(c0) };
  }

  async close(): Promise<void> {
    this.lastCpu = getCpu();
    await this.driver.close();
  }
}
