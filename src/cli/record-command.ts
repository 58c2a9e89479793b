import { basename } from 'node:path';
import { ControlClient } from '../control/control-client.ts';
import { VcdFile } from '../trace/vcd-file.ts';
import { defineCommand } from './command.ts';
import { UsageError } from './usage-error.ts';

/** A VCD scope name for a device socket path: its file name without the extension. */
export const scopeFor = (path: string): string => basename(path).replace(/\.[^.]*$/, '') || 'gpio';

export const command = defineCommand({
  usage: 'vgpio record PATH... -o FILE.vcd [--duration S]',
  help: `Records what happens on the devices at PATH... as a VCD trace (IEEE 1364, timescale 1 ns; GTKWave,
PulseView/sigrok, Surfer read it): per line a wire with its level, a wire "NAME_armed" that is 1 while
the guest's eventq buffer is held (the line is unmasked), and an event "NAME_irq" at each interrupt
delivered. The file is written as it grows. Ctrl-C (or --duration) ends the recording.

Options:
  -o, --output FILE   the VCD file to write
  --duration S        stop after S seconds`,
  options: { output: { type: 'string', short: 'o' }, duration: { type: 'string' } },
  positionals: { min: 1 },
  run: async (values, paths) => {
    if (!values.output) throw new UsageError('-o FILE.vcd is required');
    let durationMs: number | null = null;
    if (values.duration !== undefined) {
      const s = Number(values.duration);
      if (!Number.isFinite(s) || s <= 0)
        throw new UsageError(`--duration must be seconds > 0, not ${values.duration}`);
      durationMs = s * 1000;
    }
    const clients: ControlClient[] = [];
    try {
      for (const p of paths) clients.push(await ControlClient.connect(p));
      const buffered: Array<{ device: number; e: Parameters<VcdFile['event']>[1] }> = [];
      let file: VcdFile | null = null;
      let failure: Error | null = null;
      let finish: () => void = () => {};
      const finished = new Promise<void>((r) => (finish = r));
      const starts = await Promise.all(
        clients.map((c, i) =>
          c.subscribe(
            (e) => (file ? file.event(i, e) : buffered.push({ device: i, e })),
            (error) => {
              if (error) failure = new Error(`${paths[i]}: ${error.message}`);
              finish();
            },
          ),
        ),
      );
      const startNs = starts.reduce((m, s) => (s.timeNs < m ? s.timeNs : m), starts[0].timeNs);
      file = new VcdFile(
        values.output,
        starts.map((s, i) => ({ scope: scopeFor(paths[i]), lines: s.status.lines })),
        startNs,
      );
      for (const b of buffered) file.event(b.device, b.e);
      const onSignal = () => finish();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const timer = durationMs === null ? null : setTimeout(finish, durationMs);
      await finished;
      if (timer) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      file.close(
        durationMs === null ? process.hrtime.bigint() : startNs + BigInt(Math.round(durationMs * 1e6)),
      );
      process.stderr.write(
        `vgpio: recorded ${paths.length} device(s) to ${values.output} (${file.bytes} bytes)\n`,
      );
      if (failure) throw failure;
      return 0;
    } finally {
      for (const c of clients) c.close();
    }
  },
});
