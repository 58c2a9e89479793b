import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ControlClient } from '../control/control-client.ts';
import { controlPathFor } from '../control/control-protocol.ts';
import { HarnessError } from './harness-error.ts';

/** Something that can set the level a device senses on an input line, from outside the guest. */
export interface InputDriver {
  readonly description: string;
  /** Rejects with a HarnessError when the level could not be set. */
  set(line: number, value: 0 | 1): Promise<void>;
  close(): void;
}

/** vgpio's own control endpoint (PATH.ctl). */
export class ControlInputDriver implements InputDriver {
  readonly description = 'vgpio control endpoint';
  private constructor(private readonly client: ControlClient) {}

  static async forSocket(socketPath: string): Promise<ControlInputDriver | null> {
    if (!existsSync(controlPathFor(socketPath))) return null;
    try {
      return new ControlInputDriver(await ControlClient.connect(socketPath));
    } catch (e) {
      throw new HarnessError(`cannot use the control endpoint of ${socketPath}: ${(e as Error).message}`);
    }
  }

  async set(line: number, value: 0 | 1): Promise<void> {
    const r = await this.client.request({ op: 'input', line, value }).catch((e: unknown) => {
      throw new HarnessError(`control endpoint: input ${line}=${value}: ${(e as Error).message}`);
    });
    if (!r.ok) throw new HarnessError(`control endpoint: input ${line}=${value}: ${r.error}`);
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
      child.on('error', (e) => reject(new HarnessError(`drive command "${cmd}": ${e.message}`)));
      child.on('exit', (code, signal) => {
        if (code === 0) return resolve();
        const how = code === null ? `was killed by ${signal}` : `exited ${code}`;
        reject(new HarnessError(`drive command "${cmd}" ${how}${err.trim() ? `: ${err.trim()}` : ''}`));
      });
    });
  }

  close(): void {}
}
