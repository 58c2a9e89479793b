import { Direction, IrqType } from '../protocol/constants.ts';
import { GpioLineError } from './gpio-line-error.ts';

export type DirectionSetting = 'input' | 'output' | 'as-is';
export type EdgeSetting = 'none' | 'rising' | 'falling' | 'both';

/** Per-line settings of a line request (libgpiod v2's line settings, the subset virtio-gpio has). */
export interface LineSettings {
  direction?: DirectionSetting;
  edge?: EdgeSetting;
  outputValue?: 0 | 1;
}

export interface LineRequestConfig {
  consumer?: string;
  lines: Record<number, LineSettings>;
}

export const edgeIrqType: Record<EdgeSetting, IrqType> = {
  none: IrqType.NONE,
  rising: IrqType.EDGE_RISING,
  falling: IrqType.EDGE_FALLING,
  both: IrqType.EDGE_BOTH,
};

export const directionSetting = (d: Direction): DirectionSetting =>
  d === Direction.OUT ? 'output' : d === Direction.IN ? 'input' : 'as-is';

/** Settings with defaults filled in, checked for combinations libgpiod rejects (EINVAL). */
export function normalizeSettings(s: LineSettings, offset: number): Required<LineSettings> {
  const n = {
    direction: s.direction ?? 'as-is',
    edge: s.edge ?? 'none',
    outputValue: s.outputValue ?? 0,
  } as const;
  if (n.edge !== 'none' && n.direction === 'output')
    throw new GpioLineError('EINVAL', `line ${offset}: edge detection needs an input`);
  if (n.outputValue !== 0 && n.outputValue !== 1)
    throw new GpioLineError('EINVAL', `line ${offset}: output value must be 0 or 1`);
  return n;
}
