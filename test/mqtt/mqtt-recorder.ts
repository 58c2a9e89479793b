// A test's own MQTT client (MQTT.js) that records every message it receives, to wait on.
import assert from 'node:assert/strict';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  at: bigint;
}

export class Recorder {
  readonly messages: Received[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({
        topic,
        payload: payload.toString(),
        retain: packet.retain,
        at: process.hrtime.bigint(),
      });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(url: string, topics: string[], opts: IClientOptions = {}): Promise<Recorder> {
    const client = await connectAsync(url, { reconnectPeriod: 200, connectTimeout: 5000, ...opts });
    const r = new Recorder(client);
    if (topics.length) await client.subscribeAsync(topics, { qos: 1 });
    return r;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  /** The last payload on `topic`, or undefined. */
  last(topic: string): string | undefined {
    return this.on(topic).at(-1)?.payload;
  }

  /** Waits until `cond` holds over what was received. */
  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      const left = end - Date.now();
      if (left <= 0)
        assert.fail(
          `no ${what} within ${ms} ms; received:\n${this.messages.map((m) => `${m.topic} ${m.payload}`).join('\n')}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for `payload` as the last message on `topic`. */
  async value(topic: string, payload: string, ms = 5000): Promise<void> {
    await this.until(() => this.last(topic) === payload, `${payload} on ${topic}`, ms);
  }

  async publish(topic: string, payload: string, retain = false): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => {});
  }
}
