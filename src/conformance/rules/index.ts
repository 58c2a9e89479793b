import type { Rule } from '../rule.ts';
import { configFields, namesBlock } from './config.ts';
import {
  irqDisableReturns,
  irqNoValidDisabled,
  irqSecondBuffer,
  irqTypes,
  irqUnmaskDisabled,
} from './eventq.ts';
import {
  directionNoneReset,
  gpioRange,
  orderSameLine,
  responseFields,
  setDirectionOutFirst,
  setValueBeforeOut,
  setValueOnOutput,
  typeUnknown,
  valueRange,
} from './requestq.ts';
import { eventIdx, layoutBytewise, layoutIndirect, layoutSplit } from './ring.ts';
import {
  irqEdge,
  irqEdgeBoth,
  irqEdgeCoalesced,
  irqEdgeFilter,
  irqEdgeLatched,
  irqLevel,
  irqLevelNotLatched,
  irqLatchDropped,
} from './triggers.ts';

/** Every rule, in the order they run: config, requestq, ring layouts, lines, interrupts, EVENT_IDX. */
export const rules: readonly Rule[] = [
  configFields,
  namesBlock,
  responseFields,
  gpioRange,
  typeUnknown,
  valueRange,
  layoutSplit,
  layoutBytewise,
  layoutIndirect,
  setValueBeforeOut,
  setValueOnOutput,
  setDirectionOutFirst,
  directionNoneReset,
  orderSameLine,
  irqTypes,
  irqUnmaskDisabled,
  irqDisableReturns,
  irqSecondBuffer,
  irqEdge,
  irqEdgeFilter,
  irqEdgeBoth,
  irqEdgeLatched,
  irqEdgeCoalesced,
  irqLatchDropped,
  irqLevel,
  irqLevelNotLatched,
  irqNoValidDisabled,
  eventIdx,
];
