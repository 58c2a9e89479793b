// Reads a VCD file back with Debian's sigrok-cli (an independent reader): the sequence of states
// of the file's wires, consecutive duplicates removed. Idle stretches are compressed (`compress`)
// so a trace of seconds at 1 ns does not expand into billions of samples.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SIGROK = '/usr/bin/sigrok-cli';
/** A skip reason when sigrok-cli is absent (CI installs it), else false. */
export const noSigrok: string | false = existsSync(SIGROK)
  ? false
  : 'sigrok-cli is not installed (apt-get install sigrok-cli): the VCD read-back is skipped';

export interface SigrokTrace {
  channels: string[];
  /** Each row: one value per channel, in the order the states occurred. */
  states: number[][];
}

export function readVcd(path: string): SigrokTrace {
  const r = spawnSync(SIGROK, ['-I', 'vcd:compress=4', '-i', path, '-O', 'csv'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  if (r.status !== 0) throw new Error(`sigrok-cli failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.split('\n');
  const head = lines.find((l) => l.startsWith('; Channels'));
  if (!head) throw new Error(`sigrok-cli printed no channel list:\n${r.stdout.slice(0, 500)}`);
  const channels = head.replace(/^; Channels \(\d+\/\d+\): /, '').split(', ');
  const states: number[][] = [];
  for (const l of lines) {
    if (!/^[01](,[01])*$/.test(l)) continue;
    const row = l.split(',').map(Number);
    const prev = states.at(-1);
    if (!prev || prev.some((v, i) => v !== row[i])) states.push(row);
  }
  return { channels, states };
}

/** The distinct successive values of one channel (its transitions, starting with the first). */
export function transitions(t: SigrokTrace, channel: string): number[] {
  const i = t.channels.indexOf(channel);
  if (i < 0) throw new Error(`no channel ${channel} in ${t.channels.join(', ')}`);
  const out: number[] = [];
  for (const s of t.states) if (out.at(-1) !== s[i]) out.push(s[i]);
  return out;
}
