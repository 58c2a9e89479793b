import type { EdgeEvent } from './edge-event.ts';

interface Entry {
  event: EdgeEvent;
  ack: () => void;
}

/**
 * Edge events as an async iterator with acknowledgement: an event counts as handled when the
 * consumer asks for the next one (or stops iterating). Until then its line stays masked.
 */
export class EdgeEventStream implements AsyncIterableIterator<EdgeEvent> {
  private readonly buffered: Entry[] = [];
  private waiting: ((r: IteratorResult<EdgeEvent>) => void) | null = null;
  private current: Entry | null = null;
  private ended = false;

  constructor(private readonly onEnd: (s: EdgeEventStream) => void) {}

  /** Offers an event; resolves when the consumer is done with it. */
  push(event: EdgeEvent): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise<void>((ack) => {
      const entry = { event, ack };
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        this.current = entry;
        w({ value: event, done: false });
      } else {
        this.buffered.push(entry);
      }
    });
  }

  next(): Promise<IteratorResult<EdgeEvent>> {
    this.current?.ack();
    this.current = null;
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    const entry = this.buffered.shift();
    if (entry) {
      this.current = entry;
      return Promise.resolve({ value: entry.event, done: false });
    }
    return new Promise((r) => (this.waiting = r));
  }

  return(): Promise<IteratorResult<EdgeEvent>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the stream: pending events are acknowledged, a waiting next() finishes. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.current?.ack();
    this.current = null;
    for (const e of this.buffered.splice(0)) e.ack();
    this.waiting?.({ value: undefined, done: true });
    this.waiting = null;
    this.onEnd(this);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<EdgeEvent> {
    return this;
  }
}
