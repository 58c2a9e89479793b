// The `vgpio serve` config schema: every malformed field gets one line naming the file, the JSON
// path and what was expected; the same rules for --lines/--names/--socket-mode; a bad config
// starts nothing (child process).
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ConfigError, parseConfigFile, parseDeviceFlags } from '../../src/daemon/serve-config.ts';
import { tempDir } from '../transports/vhost-user/harness.ts';
import { runCli } from './daemon-harness.ts';

const F = '/etc/vgpio.json';

/** The error lines parseConfigFile throws for `json`. */
function errorsOf(json: unknown): string[] {
  try {
    parseConfigFile(F, typeof json === 'string' ? json : JSON.stringify(json));
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split('\n');
  }
  assert.fail('no error');
}

describe('config file schema', () => {
  test('a valid file: defaults filled, modes parsed as octal, --socket-mode as the default', () => {
    const text = JSON.stringify({
      devices: [
        { socket: '/run/a.sock', lines: 16, names: ['reset', '', 'irq'] },
        { socket: '/run/b.sock', socketMode: '0660', control: '/run/b-control.sock' },
      ],
    });
    assert.deepEqual(parseConfigFile(F, text, 0o640), [
      {
        socket: '/run/a.sock',
        lines: 16,
        names: ['reset', '', 'irq'],
        socketMode: 0o640,
        control: undefined,
      },
      {
        socket: '/run/b.sock',
        lines: 8,
        names: undefined,
        socketMode: 0o660,
        control: '/run/b-control.sock',
      },
    ]);
  });

  test('null, a non-object, no devices, an empty list', () => {
    assert.deepEqual(errorsOf(null), [`${F}: (top level): Invalid input: expected object, received null`]);
    assert.deepEqual(errorsOf([]), [`${F}: (top level): Invalid input: expected object, received array`]);
    assert.deepEqual(errorsOf({}), [`${F}: devices: Invalid input: expected array, received undefined`]);
    assert.deepEqual(errorsOf({ devices: [] }), [`${F}: devices: expected at least one device`]);
    assert.deepEqual(errorsOf({ devices: [null] }), [
      `${F}: devices[0]: Invalid input: expected object, received null`,
    ]);
  });

  test('not JSON: the parser error, naming the file', () => {
    const [line] = errorsOf('{"devices": [');
    assert.match(line, /^\/etc\/vgpio\.json: not JSON: /);
  });

  test('unknown keys (socket_mode) at every level', () => {
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', socket_mode: '0660' }] }), [
      `${F}: devices[0]: Unrecognized key: "socket_mode"`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a' }], board: 'x' }), [
      `${F}: (top level): Unrecognized key: "board"`,
    ]);
  });

  test('wrong types: lines as a string, names as a comma string, socket missing or empty', () => {
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', lines: '8' }] }), [
      `${F}: devices[0].lines: Invalid input: expected number, received string`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', names: 'a,b' }] }), [
      `${F}: devices[0].names: Invalid input: expected array, received string`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ lines: 2 }, { socket: '' }] }), [
      `${F}: devices[0].socket: Invalid input: expected string, received undefined`,
      `${F}: devices[1].socket: expected a socket path`,
    ]);
    assert.deepEqual(
      errorsOf({
        devices: [
          { socket: '/a', lines: 0 },
          { socket: '/b', lines: 1.5 },
        ],
      }),
      [
        `${F}: devices[0].lines: Too small: expected number to be >=1`,
        `${F}: devices[1].lines: Invalid input: expected int, received number`,
      ],
    );
  });

  test('socketMode: a JSON number is refused (432 is not 0660), a bad octal string too', () => {
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a' }, { socket: '/b', socketMode: 432 }] }), [
      `${F}: devices[1].socketMode: expected an octal mode string like "0660" (a JSON number would be read as decimal)`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', socketMode: '0968' }] }), [
      `${F}: devices[0].socketMode: expected an octal mode like "0660", got "0968"`,
    ]);
  });

  test('names: more than lines, duplicates, non-ASCII', () => {
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', lines: 2, names: ['a', 'b', 'c'] }] }), [
      `${F}: devices[0].names: expected at most 2 names (one per line), got 3`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', names: ['a', '', 'a'] }] }), [
      `${F}: devices[0].names[2]: expected a unique name: "a" is also line 0`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a', names: ['ü'] }] }), [
      `${F}: devices[0].names[0]: expected a 7-bit ASCII line name`,
    ]);
  });

  test('duplicate socket paths, also against another device’s control socket', () => {
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a' }, { socket: '/a' }] }), [
      `${F}: devices[1].socket: expected a path of its own: /a is also devices[0].socket`,
      `${F}: devices[1].control: expected a path of its own: /a.ctl is also devices[0].control`,
    ]);
    assert.deepEqual(errorsOf({ devices: [{ socket: '/a' }, { socket: '/b', control: '/a.ctl' }] }), [
      `${F}: devices[1].control: expected a path of its own: /a.ctl is also devices[0].control`,
    ]);
  });
});

describe('--lines / --names / --socket-mode', () => {
  const flagErrors = (f: Parameters<typeof parseDeviceFlags>[0]): string[] => {
    try {
      parseDeviceFlags(f);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.message.split('\n');
    }
    assert.fail('no error');
  };

  test('valid flags', () => {
    assert.deepEqual(parseDeviceFlags({ lines: '4', names: 'led,,button', socketMode: '660' }), {
      lines: 4,
      names: ['led', '', 'button'],
      socketMode: 0o660,
    });
  });

  test('more names than --lines is an error, not a silent drop', () => {
    assert.deepEqual(flagErrors({ lines: '2', names: 'a,b,c' }), [
      '--names: expected at most 2 names (one per line), got 3',
    ]);
  });

  test('bad counts, modes, duplicate names: each flag named', () => {
    assert.deepEqual(flagErrors({ lines: '8x', names: 'a,a', socketMode: 'rw' }), [
      '--lines: expected a line count 1..65535, got "8x"',
      '--socket-mode: expected an octal mode like "0660", got "rw"',
      '--names[1]: expected a unique name: "a" is also line 0',
    ]);
    assert.deepEqual(flagErrors({ lines: '70000' }), ['--lines: Too big: expected number to be <=65535']);
    assert.deepEqual(flagErrors({ lines: '3', names: 'a,b,a' }), [
      '--names[2]: expected a unique name: "a" is also line 0',
    ]);
  });
});

describe('vgpio serve with a bad config (child process)', { timeout: 180_000 }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('exit 2, every issue with file and path, the usage line; nothing started', async () => {
    const good = `${tmp.dir}/good.sock`;
    const file = `${tmp.dir}/bad.json`;
    writeFileSync(
      file,
      JSON.stringify({
        devices: [
          { socket: good, lines: 2 },
          { socket: `${tmp.dir}/b.sock`, socketMode: 432 },
        ],
      }),
    );
    const r = await runCli(['serve', '--config', file]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr.split('\n')[0],
      `vgpio: ${file}: devices[1].socketMode: expected an octal mode string like "0660" (a JSON number would be read as decimal)`,
    );
    assert.match(r.stderr, /\nusage: vgpio serve /);
    assert.deepEqual([existsSync(good), existsSync(`${good}.ctl`)], [false, false]);
  });

  test('--names longer than --lines: exit 2, nothing listening', async () => {
    const path = `${tmp.dir}/names.sock`;
    const r = await runCli(['serve', '--socket', path, '--lines', '1', '--names', 'a,b']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vgpio: --names: expected at most 1 names \(one per line\), got 2\n/);
    assert.equal(existsSync(path), false);
  });
});
