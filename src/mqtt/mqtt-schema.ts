import { z } from 'zod';

/**
 * The `mqtt` section of a board file (README "Lines on an MQTT broker"): the broker, who we are,
 * the topic prefix, which lines are published and which take commands, and wire ends that cross
 * hosts through the broker. Line references are "DEVICE:LINE" as elsewhere in the board file;
 * mqtt-lines.ts resolves them against the served devices.
 */

const REF_HINT = 'expected a line reference "DEVICE:LINE" (a device name, then an offset or a line name)';
const lineRef = z.string({ error: REF_HINT }).regex(/^[^:]+:.+$/, { error: REF_HINT });
const refs = z.array(lineRef);

/** A topic we publish to or subscribe to: no wildcards (MQTT 3.1.1 §4.7), not empty. */
const topic = z
  .string({ error: 'expected an MQTT topic' })
  .min(1, { error: 'expected an MQTT topic' })
  .max(65535)
  .refine((t) => !/[#+\0]/.test(t), { error: 'expected a topic without wildcards (#, +) or NUL' });

const prefix = topic.refine((t) => !t.endsWith('/') && !t.startsWith('/'), {
  error: 'expected a topic prefix without a leading or trailing "/"',
});

const brokerUrl = z.string({ error: 'expected a broker URL like mqtt://broker:1883' }).refine(
  (u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'mqtt:' || p.protocol === 'mqtts:') && p.hostname !== '';
    } catch {
      return false;
    }
  },
  { error: (i) => `expected an mqtt:// or mqtts:// broker URL, got ${JSON.stringify(i.input)}` },
);

/** One end of a wire that is a topic: a local output published to it, or a topic driving local inputs. */
const mqttWire = z.union(
  [
    z.strictObject({
      /** The local output whose level is published (retained) to `topic`. */
      from: lineRef,
      topic,
    }),
    z.strictObject({
      /** `0`/`1` payloads on this topic (e.g. another host's `.../state`) drive these local inputs. */
      topic,
      to: z.union([lineRef, refs.min(1, { error: 'expected at least one line' })]),
    }),
  ],
  { error: 'expected a wire end {"from": "DEVICE:LINE", "topic": T} or {"topic": T, "to": "DEVICE:LINE"}' },
);

export const mqttSectionSchema = z
  .strictObject({
    url: brokerUrl,
    /** Default vgpio-PREFIX (stable, so the broker keeps the session and queued QoS 1 commands). */
    clientId: z.string().min(1).max(65535).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    /** TLS (mqtts://): PEM files, relative to the board file. */
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Default vgpio/HOSTNAME. */
    prefix: prefix.optional(),
    qos: z.union([z.literal(0), z.literal(1)], { error: 'expected a QoS of 0 or 1' }).optional(),
    /** Lines published (state, config, event); default every line of every simulated device. */
    publish: refs.optional(),
    /** Lines whose PREFIX/DEVICE/LINE/set is obeyed; default none. */
    commands: refs.optional(),
    /** Home Assistant MQTT discovery messages under homeassistant/. */
    homeAssistant: z.boolean().optional(),
    wires: z.array(mqttWire).optional(),
    /** Reconnect backoff: first wait, doubled up to maxMs (defaults 500 and 30000). */
    reconnect: z
      .strictObject({
        minMs: z.number().int().min(10).max(600_000).optional(),
        maxMs: z.number().int().min(10).max(600_000).optional(),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.password !== undefined && s.username === undefined)
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'expected "username" with "password"' });
    if ((s.cert === undefined) !== (s.key === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [s.cert === undefined ? 'cert' : 'key'],
        message: 'expected both "cert" and "key" for a TLS client certificate',
      });
    const tls = s.ca !== undefined || s.cert !== undefined;
    if (tls && !s.url.startsWith('mqtts:'))
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: 'expected an mqtts:// URL with "ca"/"cert"/"key"',
      });
  });

export type MqttSection = z.infer<typeof mqttSectionSchema>;
export type MqttWireSpec = NonNullable<MqttSection['wires']>[number];

/** The fields the board file gains. */
export const mqttFields = { mqtt: mqttSectionSchema.optional() };
