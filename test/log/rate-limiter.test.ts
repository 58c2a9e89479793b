// StreamLogger's per-kind rate limit: the first lines of a kind in full, then one count per
// interval; kinds are counted per child logger (per device); debug lines are never limited.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamLogger } from '../../src/log/logger.ts';

function capture(intervalMs = 10_000, burst = 3) {
  const lines: string[] = [];
  const log = new StreamLogger({
    level: 'debug',
    format: 'json',
    write: (l) => lines.push(l),
    rateLimit: { burst, intervalMs },
  });
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, parsed };
}

describe('log rate limit', () => {
  test('a kind repeated 1000 times: the first 3 in full, then one summary with the exact count', () => {
    const { log, parsed } = capture();
    for (let i = 0; i < 1000; i++) log.log('warn', `requestq: ${i % 7}-byte request (need 8): ERR`, { i });
    assert.deepEqual(
      parsed().map((p) => p.i),
      [0, 1, 2],
    );
    log.flush();
    const all = parsed();
    assert.equal(all.length, 4);
    assert.equal(all[3].msg, 'requestq: 0-byte request (need 8): ERR');
    assert.equal(all[3].suppressed, 997);
    assert.equal(all[3].level, 'warn');
    log.flush();
    assert.equal(parsed().length, 4, 'nothing new suppressed: no second summary');
  });

  test('kinds differ by words, not numbers; levels are separate kinds', () => {
    const { log, parsed } = capture();
    for (let i = 0; i < 10; i++) {
      log.log('warn', `line ${i}: second eventq buffer while one is held: returned INVALID`);
      log.log('warn', `eventq buffer for invalid line ${i}: returned INVALID`);
      log.log('error', `eventq buffer for invalid line ${i}: returned INVALID`);
      log.log('warn', `ring at 0x${(i * 4096).toString(16)} is outside memory`);
    }
    assert.equal(parsed().length, 4 * 3);
    log.flush();
    assert.deepEqual(
      parsed()
        .slice(12)
        .map((p) => p.suppressed),
      [7, 7, 7, 7],
    );
  });

  test('each child logger (a device) has its own counts: one flooding does not hide the other', () => {
    const { log, parsed } = capture();
    const a = log.child({ socket: 'a.sock' });
    const b = log.child({ socket: 'b.sock' });
    for (let i = 0; i < 100; i++) a.log('warn', 'request refused', { n: i });
    b.log('warn', 'request refused', { n: 0 });
    const bLines = parsed().filter((p) => p.socket === 'b.sock');
    assert.equal(bLines.length, 1);
    assert.equal(parsed().filter((p) => p.socket === 'a.sock').length, 3);
  });

  test('debug lines are not limited; a disabled limit writes everything', () => {
    const { log, lines } = capture();
    for (let i = 0; i < 50; i++) log.log('debug', 'message');
    assert.equal(lines.length, 50);
    const all: string[] = [];
    const free = new StreamLogger({ level: 'info', write: (l) => all.push(l), rateLimit: null });
    for (let i = 0; i < 50; i++) free.log('warn', 'same');
    assert.equal(all.length, 50);
  });

  test('the summary is written by the interval timer; a kind quiet for an interval starts over', async () => {
    const { log, parsed } = capture(40, 2);
    for (let i = 0; i < 5; i++) log.log('warn', 'bad chain');
    assert.equal(parsed().length, 2);
    await sleep(60);
    assert.deepEqual(parsed()[2], { ...parsed()[2], msg: 'bad chain', suppressed: 3, interval_s: 0.04 });
    await sleep(100); // a whole quiet interval: forgotten
    log.log('warn', 'bad chain');
    log.log('warn', 'bad chain');
    assert.equal(parsed().length, 5);
  });

  test('at most 256 kinds per logger: distinct messages beyond share one count', () => {
    const { log, parsed } = capture(10_000, 1);
    for (let i = 0; i < 1000; i++)
      log.log('warn', `kind ${String.fromCharCode(65 + (i % 26))}${'x'.repeat(i)}`);
    assert.equal(parsed().length, 257);
    log.flush();
    const last = parsed().at(-1);
    assert.equal(last?.msg, '(other kinds)');
    assert.equal(last?.suppressed, 1000 - 257);
  });
});
