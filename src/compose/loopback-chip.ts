import { Chip } from '../driver/chip.ts';
import type { GpioDriverOptions } from '../driver/gpio-driver.ts';
import { GpioDevice } from '../device/gpio-device.ts';
import { SimulatedLines } from '../device/simulated-lines.ts';
import { VirtioGpioDevice, type VirtioGpioDeviceOptions } from '../device/virtio-gpio-device.ts';
import type { DescriptorChain } from '../virtqueue/descriptor-chain.ts';
import { LoopbackTransport } from '../transports/loopback/loopback-transport.ts';

export interface LoopbackChip {
  chip: Chip;
  /** The simulated wires: drive inputs, read outputs. */
  lines: SimulatedLines;
  device: GpioDevice<DescriptorChain>;
  transport: LoopbackTransport;
}

/** A simulated virtio-gpio device and a driver for it, wired together in this process. */
export async function openLoopbackChip(opts: {
  lines: number;
  names?: readonly string[];
  device?: VirtioGpioDeviceOptions;
  driver?: GpioDriverOptions;
}): Promise<LoopbackChip> {
  const lines = new SimulatedLines(opts.lines, opts.names);
  const device = new GpioDevice<DescriptorChain>(lines);
  const transport = new LoopbackTransport(new VirtioGpioDevice(device, opts.device));
  const chip = await Chip.open(transport, opts.driver);
  return { chip, lines, device, transport };
}
