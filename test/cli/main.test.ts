// The command table as a user meets it (child processes): top-level help lists every command,
// each command answers --help with its usage line, --version, --print-capabilities at top level
// whatever follows, positional counts, and vhost-user.rst's `vgpio --socket-path` form.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { command as serveCommand } from '../../src/cli/serve-command.ts';
import { runCli } from '../daemon/daemon-harness.ts';

const COMMANDS = ['serve', 'input', 'output', 'status', 'conformance', 'bench'];
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('vgpio command line', { timeout: 120_000 }, () => {
  test('vgpio --help lists the commands; no command prints it to stderr with exit 2', async () => {
    const [help, none] = await Promise.all([runCli(['--help']), runCli([])]);
    assert.equal(help.code, 0);
    for (const c of COMMANDS) assert.match(help.stdout, new RegExp(`\\n  ${c} +\\S`), c);
    assert.deepEqual(none, { code: 2, stdout: '', stderr: help.stdout });
  });

  test('every command answers --help and -h with its usage line and options, exit 0', async () => {
    // Every command `vgpio --help` lists, including those added after this test was written.
    const listed = [...(await runCli(['--help'])).stdout.matchAll(/^ {2}([a-z-]+) {2,}\S/gm)].map(
      (m) => m[1],
    );
    for (const c of COMMANDS) assert.ok(listed.includes(c), c);
    const results = [];
    for (const c of listed) results.push(await runCli([c, c === 'status' ? '-h' : '--help'], 30_000));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, listed[i]);
      assert.match(r.stdout, new RegExp(`^Usage: vgpio ${listed[i]}\\b.*\\n\\n\\S`), listed[i]);
      assert.equal(r.stderr, '');
    });
    // --help wins over anything else on the line, even an unknown option.
    const h = await runCli(['serve', '--bogus', '-h']);
    assert.deepEqual(h, results[listed.indexOf('serve')]);
    assert.match(results[listed.indexOf('serve')].stdout, /\n {2}--socket-mode MODE {5}octal mode/);
  });

  test('--version prints the package version', async () => {
    assert.deepEqual(await runCli(['--version']), { code: 0, stdout: `${version}\n`, stderr: '' });
  });

  test('--print-capabilities at top level and after serve, ignoring every other option', async () => {
    const caps = { code: 0, stdout: '{"type":"gpio"}\n', stderr: '' };
    const [top, withJunk, serve, after] = await Promise.all([
      runCli(['--print-capabilities']),
      runCli(['--print-capabilities', '--socket-path', '/nonexistent/x', '--bogus']),
      runCli(['serve', '--lines', 'nope', '--print-capabilities']),
      runCli(['--socket-path', '/nonexistent/x', '--print-capabilities', '--bogus']),
    ]);
    assert.deepEqual([top, withJunk, serve, after], [caps, caps, caps, caps]);
  });

  test('vgpio --socket-path/--fd (vhost-user.rst back-end form) is vgpio serve', async () => {
    const r = await runCli(['--fd', 'x']);
    assert.deepEqual(r, {
      code: 2,
      stdout: '',
      stderr: `vgpio: --fd x is not a file descriptor\nusage: ${serveCommand.usage}\n`,
    });
  });

  test('positional counts: extra arguments are rejected with the usage line', async () => {
    const [serve, status] = await Promise.all([
      runCli(['serve', '--socket', '/tmp/x.sock', 'extra']),
      runCli(['status', '/tmp/x.sock', 'more']),
    ]);
    assert.equal(serve.code, 2);
    assert.match(serve.stderr, /^vgpio: unexpected argument "extra"\nusage: vgpio serve /);
    assert.equal(status.code, 2);
    assert.match(status.stderr, /^vgpio: unexpected argument "more"\nusage: vgpio status PATH/);
  });
});
