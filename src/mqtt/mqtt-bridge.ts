import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { Store, connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { BoardLines } from '../board/board-lines.ts';
import { directionNameOf, edgeNameOf, isLineEvent, type DeviceEvent } from '../device/device-events.ts';
import type { Level } from '../device/line-backend.ts';
import type { Logger } from '../log/logger.ts';
import { layoutBridge, type BridgeLayout, type BridgedDevice, type BridgedLine } from './mqtt-lines.ts';
import type { MqttSection } from './mqtt-schema.ts';

export interface MqttBridgeOptions {
  section: MqttSection;
  devices: readonly BridgedDevice[];
  log: Logger;
  /** Where relative TLS file paths start (the board file's directory). */
  baseDir?: string;
}

/** `PREFIX` when the section gives none: vgpio/HOSTNAME (a topic level: no "/", "+" or "#"). */
export const defaultPrefix = (): string => `vgpio/${hostname().replace(/[/+#\0]/g, '_')}`;

/** A `0`/`1` payload, or why it is not one. */
function levelOf(payload: Buffer): Level | string {
  // Only the first bytes are ever shown: a huge payload is not decoded whole.
  const s = payload.subarray(0, 64).toString('utf8').trim();
  if (payload.length > 64) return `expected a payload of 0 or 1, got ${payload.length} bytes`;
  if (s === '0' || s === '1') return s === '1' ? 1 : 0;
  const shown = s.length > 32 ? `${JSON.stringify(s.slice(0, 32))}…` : JSON.stringify(s);
  return `expected a payload of 0 or 1, got ${shown}`;
}

/**
 * A daemon's lines on an MQTT broker (MQTT.js), per README "Lines on an MQTT broker":
 * `PREFIX/DEVICE/LINE/state` (retained `0`/`1`), `.../config` (retained JSON), `.../event` (JSON:
 * delivered interrupts and guest-driven output changes), `.../set` (obeyed for the lines the section
 * allows), `PREFIX/status` (`online`, last will `offline`), Home Assistant discovery, and wire ends
 * across hosts. The broker going away never touches the devices: publishes wait in MQTT.js's store,
 * the client reconnects with backoff, and on reconnect retained state is published again. The session
 * is persistent (clean: false, a stable client id), so the broker queues QoS 1 commands meanwhile and
 * hands them over in order.
 */
export class MqttBridge {
  private readonly client: MqttClient;
  /** Kept across reconnects: client.reconnect() without them starts empty ones, losing what waits. */
  private readonly stores = { incomingStore: new Store(), outgoingStore: new Store() };
  private readonly layout: BridgeLayout;
  private readonly qos: 0 | 1;
  private readonly unsubscribe: Array<() => void> = [];
  /** Last payload published per retained topic (no duplicates on a level that did not change). */
  private readonly retained = new Map<string, string>();
  private readonly dirty = new Set<BridgedLine>();
  private readonly statusTopic: string;
  private readonly minMs: number;
  private readonly maxMs: number;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private wasConnected = false;
  private lastError = '';
  private closing = false;

  private constructor(
    private readonly section: MqttSection,
    devices: readonly BridgedDevice[],
    private readonly log: Logger,
    baseDir: string,
  ) {
    const prefix = section.prefix ?? defaultPrefix();
    this.layout = layoutBridge(section, devices, prefix);
    this.qos = section.qos ?? 1;
    this.statusTopic = `${prefix}/status`;
    this.minMs = section.reconnect?.minMs ?? 500;
    this.maxMs = Math.max(this.minMs, section.reconnect?.maxMs ?? 30_000);
    this.backoffMs = this.minMs;
    const file = (p: string | undefined) =>
      p === undefined ? undefined : readFileSync(resolvePath(baseDir, p));
    const options: IClientOptions = {
      clientId: section.clientId ?? `vgpio-${prefix.replace(/\//g, '-')}`,
      username: section.username,
      password: section.password,
      ca: file(section.ca),
      cert: file(section.cert),
      key: file(section.key),
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0, // our own backoff (scheduleReconnect)
      connectTimeout: 10_000,
      will: { topic: this.statusTopic, payload: Buffer.from('offline'), qos: this.qos, retain: true },
      manualConnect: true,
      ...this.stores,
    };
    this.client = connect(section.url, options);
    this.client.on('connect', (connack) => this.onConnect(connack.sessionPresent));
    this.client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    this.client.on('error', (e) => this.onError(e));
    this.client.on('close', () => this.onClose());
    for (const d of devices) this.unsubscribe.push(d.gpio.events.subscribe((e) => this.onDeviceEvent(d, e)));
  }

  /** Starts bridging; returns at once (the broker may be down: the devices serve regardless). */
  static start(o: MqttBridgeOptions): MqttBridge {
    const b = new MqttBridge(o.section, o.devices, o.log, o.baseDir ?? process.cwd());
    o.log.log('info', 'mqtt bridge connecting', {
      url: redact(o.section.url),
      prefix: b.layout.prefix,
      lines: b.layout.lines.size,
    });
    b.client.connect();
    return b;
  }

  get prefix(): string {
    return this.layout.prefix;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Publishes `offline` (if connected) and disconnects; stops reconnecting. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.client.connected)
      await this.client
        .publishAsync(this.statusTopic, 'offline', { qos: this.qos, retain: true })
        .catch(() => {});
    await this.client.endAsync(!this.client.connected).catch(() => {});
  }

  // --- broker side ---

  private onConnect(sessionPresent: boolean): void {
    // A level change is one small packet: send it now, not after Nagle's wait for the last ACK.
    const stream = this.client.stream as Partial<Socket>;
    stream.setNoDelay?.(true);
    this.backoffMs = this.minMs;
    this.wasConnected = true;
    this.lastError = '';
    this.log.log('info', 'mqtt connected', { url: redact(this.section.url), sessionPresent });
    const topics = [`${this.layout.prefix}/+/+/set`, ...this.layout.wiresIn.map((w) => w.topic)];
    this.client.subscribe(topics, { qos: this.qos }, (err, granted) => {
      if (err) this.log.log('error', 'mqtt subscribe failed', { error: err.message });
      for (const g of granted ?? [])
        if (g.qos === 128)
          this.log.log('error', 'mqtt subscription refused by the broker', { topic: g.topic });
    });
    // Retained state again: a broker that restarted without persistence has lost it.
    this.retained.clear();
    this.publish(this.statusTopic, 'online', true);
    for (const l of this.layout.lines.values()) this.publishLine(l);
    for (const w of this.layout.wiresOut) this.publishWireOut(w.from);
    if (this.section.homeAssistant) this.publishDiscovery();
  }

  private onError(e: Error & { code?: number | string }): void {
    // CONNACK return codes (MQTT 3.1.1 §3.2.2.3): 4 bad user name or password, 5 not authorized.
    if (e.code === 4 || e.code === 5 || e.code === 134 || e.code === 135)
      this.log.log('error', 'broker refused the connection', {
        url: redact(this.section.url),
        error: e.message,
      });
    else {
      // Once per distinct error: a broker that stays away is retried quietly.
      const repeated = e.message === this.lastError;
      this.lastError = e.message;
      this.log.log(repeated ? 'debug' : 'warn', 'mqtt connection error', { error: e.message });
    }
  }

  private onClose(): void {
    if (this.closing) return;
    if (this.wasConnected) {
      this.wasConnected = false;
      this.log.log('warn', 'mqtt disconnected: devices keep serving, reconnecting', { inMs: this.backoffMs });
    }
    if (this.reconnectTimer) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxMs);
    this.log.log('debug', 'mqtt reconnect scheduled', { inMs: wait });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closing) this.client.reconnect(this.stores);
    }, wait);
  }

  private publish(topic: string, payload: string, retain: boolean): void {
    if (retain) {
      if (this.retained.get(topic) === payload) return;
      this.retained.set(topic, payload);
    }
    // Offline, MQTT.js keeps QoS 1 publishes in its store and sends them, in order, on reconnect.
    this.client.publish(topic, payload, { qos: this.qos, retain }, (err) => {
      if (err && !this.closing) this.log.log('debug', 'mqtt publish not sent', { topic, error: err.message });
    });
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const wire = this.layout.wiresIn.find((w) => w.topic === topic);
    if (wire) {
      const level = levelOf(payload);
      if (typeof level === 'string') {
        this.log.log('warn', 'mqtt wire message rejected', { topic, reason: level });
        return;
      }
      for (const t of wire.targets) this.drive(t, level, true);
      return;
    }
    const set = `${this.layout.prefix}/`;
    if (!topic.startsWith(set) || !topic.endsWith('/set')) return;
    const [device, line] = topic.slice(set.length, -'/set'.length).split('/');
    const target = [...this.layout.lines.values()].find(
      (l) => l.device.name === device && String(l.line) === line,
    );
    const reject = (reason: string) => this.log.log('warn', 'mqtt command rejected', { topic, reason });
    if (!target) return reject(`no published line ${device}:${line}`);
    if (!target.commands) return reject(`${device}:${line} takes no commands (not in mqtt.commands)`);
    if (packet.retain) return reject('a retained command is not obeyed (publish it without the retain flag)');
    const level = levelOf(payload);
    if (typeof level === 'string') return reject(level);
    try {
      this.drive(target, level, false);
      this.log.log('debug', 'mqtt command applied', { topic, value: level });
    } catch (e) {
      reject((e as Error).message);
    }
  }

  private drive(l: BridgedLine, level: Level, byWire: boolean): void {
    const lines = l.device.lines;
    if (!lines) throw new Error(`${l.device.name} serves a host chip`);
    if (byWire && lines instanceof BoardLines) lines.applyLevel(l.line, level);
    else lines.setInput(l.line, level); // a board-driven line throws, naming its driver
  }

  // --- device side ---

  private onDeviceEvent(d: BridgedDevice, e: DeviceEvent): void {
    if (!isLineEvent(e)) return;
    const l = this.layout.lines.get(`${d.name}\0${e.line}`);
    if (!l) return;
    switch (e.type) {
      case 'output':
      case 'input':
        // An input set on a line the guest drives changes nothing the line shows: the level now.
        this.publish(`${l.base}/state`, String(this.levelNow(l)), true);
        if (e.type === 'output') this.publish(`${l.base}/event`, eventJson('output', e.to, e.timeNs), false);
        this.publishWireOut(l);
        break;
      case 'direction':
      case 'irq-type':
        this.publishLater(l);
        break;
      case 'delivered':
        this.publish(`${l.base}/event`, eventJson('interrupt', this.levelNow(l), e.timeNs), false);
        break;
      default:
        break;
    }
  }

  /**
   * A direction or interrupt type is announced while the request applying it runs: the line's config
   * and level are read once it has finished.
   */
  private publishLater(l: BridgedLine): void {
    if (this.dirty.size === 0)
      queueMicrotask(() => {
        const lines = [...this.dirty];
        this.dirty.clear();
        for (const d of lines) {
          this.publishLine(d);
          this.publishWireOut(d);
        }
      });
    this.dirty.add(l);
  }

  private snapshot(l: BridgedLine) {
    return l.device.gpio.snapshot()[l.line];
  }

  private levelNow(l: BridgedLine): Level {
    return this.snapshot(l).value;
  }

  private publishLine(l: BridgedLine): void {
    const s = this.snapshot(l);
    this.publish(`${l.base}/state`, String(s.value), true);
    const config = { direction: directionNameOf(s.direction), edge: edgeNameOf(s.irqType), name: s.name };
    this.publish(`${l.base}/config`, JSON.stringify(config), true);
  }

  private publishWireOut(l: BridgedLine): void {
    for (const w of this.layout.wiresOut)
      if (w.from === l) this.publish(w.topic, String(this.levelNow(l)), true);
  }

  /** Home Assistant MQTT discovery: a switch per line taking commands, a binary sensor for the rest. */
  private publishDiscovery(): void {
    const node = this.layout.prefix.replace(/[^A-Za-z0-9_-]/g, '_');
    for (const l of this.layout.lines.values()) {
      const object = `${l.device.name}_${l.line}`.replace(/[^A-Za-z0-9_-]/g, '_');
      const name = l.device.gpio.names[l.line] || `${l.device.name} line ${l.line}`;
      const common = {
        name,
        unique_id: `${node}_${object}`,
        state_topic: `${l.base}/state`,
        availability_topic: this.statusTopic,
        payload_available: 'online',
        payload_not_available: 'offline',
        device: { identifiers: [node], name: this.layout.prefix, manufacturer: 'vgpio' },
      };
      const body = l.commands
        ? {
            ...common,
            command_topic: `${l.base}/set`,
            payload_on: '1',
            payload_off: '0',
            state_on: '1',
            state_off: '0',
          }
        : { ...common, payload_on: '1', payload_off: '0' };
      const kind = l.commands ? 'switch' : 'binary_sensor';
      this.publish(`homeassistant/${kind}/${node}/${object}/config`, JSON.stringify(body), true);
    }
  }
}

/** The `event` payload; timestampNs is the daemon's monotonic clock, a decimal string (beyond 2^53). */
const eventJson = (type: 'output' | 'interrupt', level: Level, timeNs: bigint): string =>
  JSON.stringify({ type, level, timestampNs: timeNs.toString() });

/** A broker URL for logs: never its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
