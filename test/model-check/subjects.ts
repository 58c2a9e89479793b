import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

type GpioDeviceModule = typeof import('../../src/device/gpio-device.ts');
type VirtioGpioDeviceModule = typeof import('../../src/device/virtio-gpio-device.ts');
type SimulatedLinesModule = typeof import('../../src/device/simulated-lines.ts');
type GpioDriverModule = typeof import('../../src/driver/gpio-driver.ts');
type LoopbackModule = typeof import('../../src/transports/loopback/loopback-transport.ts');

/** The real classes under test, loaded from a source tree (src/, or a mutated copy of it). */
export interface Subjects {
  root: string;
  GpioDevice: GpioDeviceModule['GpioDevice'];
  VirtioGpioDevice: VirtioGpioDeviceModule['VirtioGpioDevice'];
  SimulatedLines: SimulatedLinesModule['SimulatedLines'];
  GpioDriver: GpioDriverModule['GpioDriver'];
  LoopbackTransport: LoopbackModule['LoopbackTransport'];
}

export const sourceRoot = new URL('../../src', import.meta.url).pathname;

const load = <M>(root: string, file: string): Promise<M> =>
  import(pathToFileURL(join(root, file)).href) as Promise<M>;

export async function loadSubjects(root: string = sourceRoot): Promise<Subjects> {
  const [device, virtio, lines, driver, loopback] = await Promise.all([
    load<GpioDeviceModule>(root, 'device/gpio-device.ts'),
    load<VirtioGpioDeviceModule>(root, 'device/virtio-gpio-device.ts'),
    load<SimulatedLinesModule>(root, 'device/simulated-lines.ts'),
    load<GpioDriverModule>(root, 'driver/gpio-driver.ts'),
    load<LoopbackModule>(root, 'transports/loopback/loopback-transport.ts'),
  ]);
  return {
    root,
    GpioDevice: device.GpioDevice,
    VirtioGpioDevice: virtio.VirtioGpioDevice,
    SimulatedLines: lines.SimulatedLines,
    GpioDriver: driver.GpioDriver,
    LoopbackTransport: loopback.LoopbackTransport,
  };
}
