// libgpiod 1.6 `gpiomon` output, as the guest prints it.
import assert from 'node:assert/strict';

export interface GpiomonEvent {
  edge: 'RISING' | 'FALLING';
  offset: number;
  /** Seconds, as printed. */
  time: number;
}

/** Parses gpiomon's output; every line must be an event. */
export function parseGpiomonEvents(out: string): GpiomonEvent[] {
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^event: +(RISING|FALLING) EDGE offset: (\d+) timestamp: \[ *(\d+\.\d{9})\]$/.exec(l);
      assert.ok(m, `not a gpiomon event line: ${JSON.stringify(l)}`);
      return { edge: m[1] as GpiomonEvent['edge'], offset: Number(m[2]), time: Number(m[3]) };
    });
}
