import { Board, type BoardLog } from '../board/board.ts';
import { boardSchema, type BoardSpec } from '../board/board-schema.ts';
import type { BoardLines } from '../board/board-lines.ts';
import { Chip } from '../driver/chip.ts';
import type { GpioDriverOptions } from '../driver/gpio-driver.ts';
import { GpioDevice } from '../device/gpio-device.ts';
import { VirtioGpioDevice } from '../device/virtio-gpio-device.ts';
import type { DescriptorChain } from '../virtqueue/descriptor-chain.ts';
import { LoopbackTransport } from '../transports/loopback/loopback-transport.ts';

export interface LoopbackBoardChip {
  chip: Chip;
  lines: BoardLines;
  device: GpioDevice<DescriptorChain>;
  transport: LoopbackTransport;
}

export interface LoopbackBoard {
  board: Board;
  /** Each device of the definition, by name, with a TypeScript driver over the loopback transport. */
  chips: Map<string, LoopbackBoardChip>;
  close(): Promise<void>;
}

/**
 * A board (src/board) with every device served in this process: the same wires, nets, pulls and
 * peripherals as a board file, driven by the TypeScript driver with no sockets. The definition is
 * checked by the board file's schema (BoardError / zod issues name the JSON path).
 */
export async function openLoopbackBoard(
  definition: BoardSpec,
  opts: { driver?: GpioDriverOptions; log?: BoardLog } = {},
): Promise<LoopbackBoard> {
  const parsed = boardSchema.safeParse(definition);
  if (!parsed.success)
    throw new Error(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('\n'),
    );
  const board = Board.create(parsed.data, opts.log);
  const chips = new Map<string, LoopbackBoardChip>();
  try {
    for (const name of board.deviceNames) {
      const lines = board.lines(name);
      const device = new GpioDevice<DescriptorChain>(lines);
      const transport = new LoopbackTransport(new VirtioGpioDevice(device));
      const chip = await Chip.open(transport, opts.driver);
      chips.set(name, { chip, lines, device, transport });
    }
    await board.start();
  } catch (e) {
    await board.close();
    for (const c of chips.values()) await c.chip.close();
    throw e;
  }
  return {
    board,
    chips,
    close: async () => {
      await board.close();
      for (const c of chips.values()) await c.chip.close();
    },
  };
}
