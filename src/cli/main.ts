import { parseArgs } from 'node:util';
import { UsageError } from './usage-error.ts';

const HELP = `vgpio — virtio-gpio with interrupts

Usage:
  vgpio serve --socket PATH [--lines N] [--names a,b,...] [--socket-mode 0600] [--control PATH]
  vgpio serve --fd N --control PATH [--lines N] [--names ...]
  vgpio serve --config FILE
  vgpio serve --print-capabilities
  vgpio input PATH LINE 0|1      set the level the guest senses on LINE (offset or name)
  vgpio output PATH LINE         print the level the guest drives on LINE
  vgpio status PATH [--json]     every line: name, direction, value, IRQ type, armed, latched, counters
  vgpio conformance --socket PATH [--drive 'CMD {line} {value}'] [--only PREFIX,...] [--timeout-ms N] [--json]
                                 check a vhost-user-gpio back-end against virtio 1.2 §5.18
  vgpio bench --socket PATH [--iterations N] [--drive CMD] [--cpu N] [--floor-cpu N] [--json]
                                 round trip, requests/s (1 and 64 lines in flight), interrupt latency,
                                 and the eventfd ping-pong floor measured in the same run

Common options: --log-level debug|info|warn|error (default info), --log-format text|json
PATH is the device's vhost-user socket path; the control endpoint is PATH.ctl.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: {
          socket: { type: 'string' },
          'socket-path': { type: 'string' },
          fd: { type: 'string' },
          lines: { type: 'string' },
          names: { type: 'string' },
          config: { type: 'string' },
          'socket-mode': { type: 'string' },
          control: { type: 'string' },
          'log-level': { type: 'string' },
          'log-format': { type: 'string' },
          'print-capabilities': { type: 'boolean' },
        },
        strict: true,
      });
      return (await import('./serve-command.ts')).serve({
        ...values,
        socket: values.socket ?? values['socket-path'],
      });
    }
    case 'conformance': {
      const { values } = parseArgs({
        args: rest,
        options: {
          socket: { type: 'string' },
          drive: { type: 'string' },
          json: { type: 'boolean' },
          only: { type: 'string' },
          'timeout-ms': { type: 'string' },
        },
        strict: true,
      });
      return (await import('./conformance-command.ts')).conformance(values);
    }
    case 'bench': {
      const { values } = parseArgs({
        args: rest,
        options: {
          socket: { type: 'string' },
          iterations: { type: 'string' },
          drive: { type: 'string' },
          cpu: { type: 'string' },
          'floor-cpu': { type: 'string' },
          json: { type: 'boolean' },
        },
        strict: true,
      });
      return (await import('./bench-command.ts')).bench(values);
    }
    case 'input':
    case 'output':
    case 'status': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' } },
        allowPositionals: true,
        strict: true,
      });
      // The line commands only talk to the control socket: they load nothing native.
      const { input, output, status } = await import('./line-commands.ts');
      if (cmd === 'input') return input(positionals);
      if (cmd === 'output') return output(positionals);
      return status(positionals, values.json ?? false);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${cmd}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err = e as Error & { code?: string };
    if (err instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`vgpio: ${err.message}\n(see vgpio --help)\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`vgpio: ${err.message}\n`);
      process.exitCode = 1;
    }
  },
);
