import { readFileSync } from 'node:fs';
import { Board } from '../board/board.ts';
import { timerfdBoardTimer } from '../board/board-timerfd.ts';
import type { DeviceConfig } from '../daemon/served-device.ts';
import { parseBoardFile } from '../daemon/serve-config.ts';
import type { Logger } from '../log/logger.ts';

/**
 * `vgpio serve --config FILE` with a board in it: builds the board and gives each simulated device
 * its board lines (configs are changed in place), or returns null for a file without one. The file
 * was checked by deviceConfigs() already. Start the board once the devices serve.
 */
export function boardFor(file: string, configs: DeviceConfig[], log: Logger): Board | null {
  const spec = parseBoardFile(file, readFileSync(file, 'utf8'));
  if (!spec) return null;
  // Board time on a timerfd: sub-millisecond deadlines (a 1 kHz clock's 0.5 ms half-periods).
  const board = Board.create(
    spec,
    (level, message, fields) => log.log(level, message, fields),
    timerfdBoardTimer((message) => log.log('warn', message)),
  );
  const names = new Set(board.deviceNames);
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    devices: Array<{ name?: string; socket: string }>;
  };
  json.devices.forEach((d, i) => {
    const name = d.name ?? d.socket;
    if (names.has(name) && configs[i] && !configs[i].chip) configs[i].simulated = board.lines(name);
  });
  return board;
}
