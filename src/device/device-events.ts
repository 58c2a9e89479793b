import type { Level } from './line-backend.ts';

/** A line's direction, by name. */
export type DirectionName = 'none' | 'output' | 'input';

/** A line's interrupt type, by name (`edge` in status, `irq-type` events). */
export type EdgeName = 'none' | 'rising' | 'falling' | 'both' | 'level-high' | 'level-low';

/** What happened on one line. Every event carries `line` (offset) and `name` ('' if unnamed). */
export type LineEventBody =
  /** The guest drove an output (SET_VALUE, or SET_DIRECTION OUT): the level on the wire changed. */
  | { type: 'output'; from: Level; to: Level }
  /** The level an input (or an unconfigured line) senses changed: the host drove it. */
  | { type: 'input'; from: Level; to: Level }
  /** The guest set the direction (SET_DIRECTION, or SET_IRQ_TYPE on a line with direction NONE). */
  | { type: 'direction'; direction: DirectionName }
  /** The guest set the interrupt type (SET_IRQ_TYPE), or a driver reset set it back to none. */
  | { type: 'irq-type'; edge: EdgeName }
  /** The guest queued the line's eventq buffer and the device holds it: the line is unmasked. */
  | { type: 'armed' }
  /** A matching edge while masked: one interrupt is now pending. */
  | { type: 'latched' }
  /** A matching edge while one was already pending: folded into it. */
  | { type: 'coalesced' }
  /** The held buffer was handed back VALID: an interrupt. The line is masked again. */
  | { type: 'delivered' }
  /** A buffer was handed back INVALID; `held`: it had been armed (the line is masked again). */
  | { type: 'invalid'; held: boolean }
  /** The held buffer was forgotten without a hand-back (ring reset, new memory table, disconnect). */
  | { type: 'dropped' };

/** What happened to the device as a whole. */
export type DeviceEventBody =
  | { type: 'connected' }
  | { type: 'disconnected'; reason: string }
  /** The driver acknowledged its features (hex), `irq`: VIRTIO_GPIO_F_IRQ among them. */
  | { type: 'features'; features: string; irq: boolean }
  /** The host GPIO chip the device serves stopped answering (unplugged, driver unbound): lines answer ERR. */
  | { type: 'chip-gone'; reason: string };

export type LineEvent = LineEventBody & { timeNs: bigint; line: number; name: string };
export type DeviceWideEvent = DeviceEventBody & { timeNs: bigint };
/** One event of a device's stream, with a monotonic timestamp (process.hrtime.bigint). */
export type DeviceEvent = LineEvent | DeviceWideEvent;

export type DeviceEventType = DeviceEvent['type'];

export const isLineEvent = (e: DeviceEvent): e is LineEvent => 'line' in e;

export type DeviceEventListener = (e: DeviceEvent) => void;

/**
 * One typed event stream per device. Producers check `active` before building an event, so a
 * device nobody listens to allocates nothing and emits nothing. A listener that throws is
 * removed (the device keeps serving) and reported through `onListenerError`.
 */
export class DeviceEventStream {
  private listeners: DeviceEventListener[] = [];
  /** Set by the owner to log a listener that threw. */
  onListenerError: ((e: unknown) => void) | null = null;

  constructor(private readonly names: readonly string[]) {}

  /** Whether anyone listens: producers build no event otherwise. */
  get active(): boolean {
    return this.listeners.length > 0;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: DeviceEventListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Emits a line event, stamped now. Call only when `active`. */
  line(line: number, body: LineEventBody): void {
    this.dispatch({ ...body, timeNs: process.hrtime.bigint(), line, name: this.names[line] ?? '' });
  }

  /** Emits a device-wide event, stamped now. Call only when `active`. */
  device(body: DeviceEventBody): void {
    this.dispatch({ ...body, timeNs: process.hrtime.bigint() });
  }

  private dispatch(e: DeviceEvent): void {
    // A snapshot: listeners may unsubscribe (or subscribe) while being called.
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.listeners = this.listeners.filter((x) => x !== l);
        this.onListenerError?.(err);
      }
    }
  }
}

const DIRECTION_NAMES: Record<number, DirectionName> = { 0: 'none', 1: 'output', 2: 'input' };
const EDGE_NAMES: Record<number, EdgeName> = {
  0: 'none',
  1: 'rising',
  2: 'falling',
  3: 'both',
  4: 'level-high',
  8: 'level-low',
};

/** virtio direction code → name (§5.18.3: 0 none, 1 out, 2 in). */
export const directionNameOf = (code: number): DirectionName => DIRECTION_NAMES[code] ?? 'none';
/** virtio IRQ type code → name (§5.18.3: 0 none, 1 rising, 2 falling, 3 both, 4 high, 8 low). */
export const edgeNameOf = (code: number): EdgeName => EDGE_NAMES[code] ?? 'none';
export const levelName = (l: Level): 'high' | 'low' => (l === 1 ? 'high' : 'low');
