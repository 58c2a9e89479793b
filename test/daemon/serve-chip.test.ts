// `vgpio serve --chip` and the board file's chip entries: checked before anything listens. (Serving a
// real chip is tested against the kernel's gpiolib in test/e2e/vgpio-guest-passthrough.test.ts.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseChipLines, parseConfigFile } from '../../src/daemon/serve-config.ts';
import { deviceConfigs } from '../../src/cli/serve-command.ts';
import { UsageError } from '../../src/cli/usage-error.ts';
import { CLI, ROOT } from './daemon-harness.ts';

const file = (devices: unknown[]): string => JSON.stringify({ devices });
const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError || e instanceof UsageError, String(e));
    return e.message;
  }
  assert.fail('expected an error');
};

describe('chip devices in the config', () => {
  it('a board file entry takes a chip path and its offsets', () => {
    const [d] = parseConfigFile(
      'b.json',
      file([{ socket: '/tmp/a.sock', chip: '/dev/gpiochip0', lines: [3, 1, 2] }]),
    );
    assert.deepEqual(d.chip, { path: '/dev/gpiochip0', lines: [3, 1, 2] });
    const [all] = parseConfigFile('b.json', file([{ socket: '/tmp/a.sock', chip: '/dev/gpiochip0' }]));
    assert.deepEqual(all.chip, { path: '/dev/gpiochip0', lines: undefined });
  });

  it('refuses a count with chip, offsets without it, names with it, and repeated offsets, by JSON path', () => {
    const err = (d: object) => errorOf(() => parseConfigFile('b.json', file([d])));
    assert.match(
      err({ socket: '/s', chip: '/dev/gpiochip0', lines: 4 }),
      /b\.json: devices\[0\]\.lines: expected an array of chip line offsets/,
    );
    assert.match(
      err({ socket: '/s', lines: [1, 2] }),
      /devices\[0\]\.lines: expected a line count: an array of line offsets needs "chip"/,
    );
    assert.match(
      err({ socket: '/s', chip: '/dev/gpiochip0', names: ['a'] }),
      /devices\[0\]\.names: expected no names: they come from the chip/,
    );
    assert.match(
      err({ socket: '/s', chip: '/dev/gpiochip0', lines: [1, 2, 1] }),
      /devices\[0\]\.lines\[2\]: expected each offset once: 1 is listed twice/,
    );
    assert.match(
      err({ socket: '/s', chip: '', lines: [1] }),
      /devices\[0\]\.chip: expected a GPIO chip path/,
    );
    assert.match(err({ socket: '/s', chip: '/dev/gpiochip0', lines: [-1] }), /devices\[0\]\.lines/);
  });

  it('--chip-lines takes offsets and ranges in order', () => {
    assert.deepEqual(parseChipLines('0-3,12,7'), [0, 1, 2, 3, 12, 7]);
    assert.match(
      errorOf(() => parseChipLines('3-1')),
      /--chip-lines: range 3-1 runs backwards/,
    );
    assert.match(
      errorOf(() => parseChipLines('1,a')),
      /--chip-lines: expected offsets and ranges like 0-7,12, got "1,a"/,
    );
    assert.match(
      errorOf(() => parseChipLines('0-3,2')),
      /--chip-lines: expected each offset once: 2 is listed twice/,
    );
  });

  it('--chip goes with --socket, not with --lines/--names; --chip-lines needs --chip', async () => {
    assert.deepEqual(
      (await deviceConfigs({ socket: '/tmp/s', chip: '/dev/gpiochip1', 'chip-lines': '4-5' }))[0].chip,
      {
        path: '/dev/gpiochip1',
        lines: [4, 5],
      },
    );
    await assert.rejects(
      deviceConfigs({ socket: '/tmp/s', chip: '/dev/gpiochip1', lines: '4' }),
      /--chip serves the chip's own lines/,
    );
    await assert.rejects(
      deviceConfigs({ socket: '/tmp/s', 'chip-lines': '1' }),
      /--chip-lines needs --chip PATH/,
    );
  });
});

describe('vgpio serve --chip', () => {
  it('exits 1 with the reason when the chip cannot be opened, leaving no socket behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-chip-'));
    try {
      const sock = join(dir, 'g.sock');
      const r = spawnSync(
        process.execPath,
        [...CLI, 'serve', '--socket', sock, '--chip', join(dir, 'gpiochip9')],
        {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /cannot start.*cannot open GPIO chip .*gpiochip9: ENOENT/);
      assert.equal(existsSync(sock), false);
      const notChip = spawnSync(
        process.execPath,
        [...CLI, 'serve', '--socket', sock, '--chip', '/dev/null'],
        {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
      assert.equal(notChip.status, 1);
      assert.match(
        notChip.stderr,
        /\/dev\/null: GPIO_GET_CHIPINFO: .*ENOTTY.*\(not a GPIO character device\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
