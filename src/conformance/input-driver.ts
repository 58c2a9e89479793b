import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ControlClient } from '../control/control-client.ts';
import { controlPathFor } from '../control/control-protocol.ts';

/** Something that can set the level a device senses on an input line, from outside the guest. */
export interface InputDriver {
  readonly description: string;
  set(line: number, value: 0 | 1): Promise<void>;
  close(): void;
}

/** vgpio's own control endpoint (PATH.ctl). */
export class ControlInputDriver implements InputDriver {
  readonly description = 'vgpio control endpoint';
  private constructor(private readonly client: ControlClient) {}

  static async forSocket(socketPath: string): Promise<ControlInputDriver | null> {
    if (!existsSync(controlPathFor(socketPath))) return null;
    return new ControlInputDriver(await ControlClient.connect(socketPath));
  }

  async set(line: number, value: 0 | 1): Promise<void> {
    const r = await this.client.request({ op: 'input', line, value });
    if (!r.ok) throw new Error(r.error);
  }

  close(): void {
    this.client.close();
  }
}

/** A user-given command template: `{line}` and `{value}` are substituted, run with /bin/sh. */
export class CommandInputDriver implements InputDriver {
  readonly description: string;
  constructor(private readonly template: string) {
    this.description = `command: ${template}`;
  }

  set(line: number, value: 0 | 1): Promise<void> {
    const cmd = this.template.replaceAll('{line}', String(line)).replaceAll('{value}', String(value));
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`drive command "${cmd}" exited ${code}: ${err.trim()}`)),
      );
    });
  }

  close(): void {}
}
