/** An edge event, as libgpiod v2 reports it. */
export interface EdgeEvent {
  type: 'rising' | 'falling';
  offset: number;
  /** When the driver took the interrupt (monotonic clock). */
  timestampNs: bigint;
  /** Sequence number across the whole line request, from 1. */
  seqno: number;
  /** Sequence number on this line, from 1. */
  lineSeqno: number;
}
