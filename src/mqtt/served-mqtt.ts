import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { ServedDevice } from '../daemon/served-device.ts';
import type { Logger } from '../log/logger.ts';
import type { MqttBridge } from './mqtt-bridge.ts';
import { mqttSectionSchema } from './mqtt-schema.ts';

/**
 * A device's name on the broker and in the mqtt section's references: its board `name`, else its
 * socket's file name without `.sock` (a topic level: "/", "+" and "#" become "_").
 */
export const brokerNameOf = (d: { name?: string; socket: string }): string =>
  (d.name ?? basename(d.socket).replace(/\.sock$/, '')).replace(/[/+#\0]/g, '_');

/**
 * `vgpio serve --config FILE` with an `mqtt` section: starts the bridge over the served devices (in the
 * file's order), or returns null for a file without one. The file was checked by parseConfigFile.
 */
export async function startMqttFor(
  file: string,
  devices: readonly ServedDevice[],
  log: Logger,
): Promise<MqttBridge | null> {
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    mqtt?: unknown;
    devices: Array<{ name?: string; socket: string }>;
  };
  if (json.mqtt === undefined) return null;
  const section = mqttSectionSchema.parse(json.mqtt);
  // MQTT.js is loaded only for a file that needs it (it adds ~0.2 s to every CLI start otherwise).
  const { MqttBridge } = await import('./mqtt-bridge.ts');
  return MqttBridge.start({
    section,
    devices: devices.map((d, i) => ({ name: brokerNameOf(json.devices[i]), gpio: d.gpio, lines: d.lines })),
    log: log.child({ surface: 'mqtt' }),
    baseDir: dirname(resolve(file)),
  });
}
