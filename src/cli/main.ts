import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CliCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

interface CommandEntry {
  name: string;
  /** One line in `vgpio --help`; kept here so that listing the commands loads none of them. */
  summary: string;
  load: () => Promise<{ command: CliCommand }>;
}

const COMMANDS: CommandEntry[] = [
  {
    name: 'serve',
    summary: 'serve simulated GPIO chips to vhost-user front-ends (QEMU): the daemon',
    load: () => import('./serve-command.ts'),
  },
  {
    name: 'input',
    summary: 'set the levels the guest senses: LINE=VALUE ... or LINE VALUE',
    load: () => import('./line-commands.ts').then((m) => ({ command: m.inputCommand })),
  },
  {
    name: 'output',
    summary: 'print the level the guest drives on a line',
    load: () => import('./line-commands.ts').then((m) => ({ command: m.outputCommand })),
  },
  {
    name: 'button',
    summary: "press, release or click a board file's button on a line",
    load: () => import('./peripheral-commands.ts').then((m) => ({ command: m.buttonCommand })),
  },
  {
    name: 'clock',
    summary: "start or stop a board file's clock on a line, or show it (period, duty)",
    load: () => import('./peripheral-commands.ts').then((m) => ({ command: m.clockCommand })),
  },
  {
    name: 'encoder',
    summary: "turn a board file's encoder to a position (quadrature A/B), or show where it is",
    load: () => import('./peripheral-commands.ts').then((m) => ({ command: m.encoderCommand })),
  },
  {
    name: 'status',
    summary: 'every line: name, direction, level, IRQ type, armed, latched, counters',
    load: () => import('./status-command.ts'),
  },
  {
    name: 'watch',
    summary: "stream a device's events live: levels, directions, IRQ types, interrupts, front-ends",
    load: () => import('./watch-command.ts'),
  },
  {
    name: 'record',
    summary: 'record the lines as a VCD trace (levels, armed windows, interrupts)',
    load: () => import('./record-command.ts'),
  },
  {
    name: 'dashboard',
    summary: 'a live web dashboard of running devices (WebSocket push, set/pulse inputs, VCD download)',
    load: () => import('./dashboard-command.ts'),
  },
  {
    name: 'conformance',
    summary: 'check a vhost-user-gpio back-end against virtio 1.2 §5.18',
    load: () => import('./conformance-command.ts'),
  },
  {
    name: 'bench',
    summary: 'round trip, requests/s, interrupt latency, and the eventfd floor of a back-end',
    load: () => import('./bench-command.ts'),
  },
];

const topHelp = (): string => {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `vgpio — virtio-gpio with interrupts (virtio 1.2 §5.18)

Usage: vgpio COMMAND [ARGS...]      vgpio COMMAND --help shows a command's options

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

  vgpio --version                   the package version
  vgpio --print-capabilities        {"type":"gpio"} (vhost-user back-end convention)

PATH is a device's vhost-user socket path; its control endpoint is PATH.ctl.
`;
};

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;

/** Which command a usage error belongs to, so the message can end with its usage line. */
let current: CliCommand | undefined;

async function main(argv: string[]): Promise<number> {
  // vhost-user.rst: a back-end program answers --print-capabilities whatever else it is given, and
  // takes --socket-path/--fd without a sub-command.
  const first = argv[0];
  const implicitServe = first !== undefined && /^--(socket-path|fd|print-capabilities)(=|$)/.test(first);
  const [name, ...rest] = implicitServe ? ['serve', ...argv] : argv;
  if (name === 'serve' && rest.includes('--print-capabilities')) {
    process.stdout.write(JSON.stringify({ type: 'gpio' }) + '\n');
    return 0;
  }
  switch (name) {
    case undefined:
      process.stderr.write(topHelp());
      return 2;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(topHelp());
      return 0;
    case '--version':
    case '-V':
      process.stdout.write(`${version()}\n`);
      return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw new UsageError(`unknown command ${name}`);
  const { command } = await entry.load();
  current = command;
  const ownArgs = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (ownArgs.includes('--help') || ownArgs.includes('-h')) {
    process.stdout.write(`Usage: ${command.usage}\n\n${command.help.trimEnd()}\n`);
    return 0;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: command.options,
    allowPositionals: true,
    strict: true,
  });
  const { min, max } = command.positionals;
  if (positionals.length < min)
    throw new UsageError(
      `expected ${max === min ? min : max === undefined ? `${min} or more` : `${min} to ${max}`} arguments, got ${positionals.length}`,
    );
  if (max !== undefined && positionals.length > max)
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`);
  return command.run(values, positionals);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err: Error & { code?: unknown } = e instanceof Error ? e : new Error(String(e));
    if (
      err instanceof UsageError ||
      (typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS'))
    ) {
      const hint = current ? `usage: ${current.usage}` : '(see vgpio --help)';
      process.stderr.write(`vgpio: ${err.message}\n${hint}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`vgpio: ${err.message}\n`);
      process.exitCode = 1;
    }
  },
);
