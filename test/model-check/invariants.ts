/**
 * The invariants the explorer checks after every step (issue 14, item 2), by name. A violation
 * names one of these; mutation tests assert which one a seeded bug breaks.
 */
export const Invariant = {
  /** At most one eventq buffer per line is with the device or on its way back. */
  oneBuffer: 'one eventq buffer per line',
  /** The device hands back no VALID for a line it has disabled. */
  noValidWhenDisabled: 'no VALID after a disable completed',
  /** An edge while enabled and masked is reported once after unmask; more coalesce into it. */
  edgeOnce: 'masked edge reported exactly once after unmask',
  /** A level type fires again at unmask while the level is still active. */
  levelRefires: 'active level fires again after unmask',
  /** Replies for one line come back in request order, one request per line in flight. */
  repliesInOrder: 'same-line replies in order',
  /** A line's handler never starts while it is running or while the line is masked. */
  handlerExclusive: 'handler never runs while running or masked',
  /** The handler calls the driver makes are the simulated lines' edges, modulo coalescing. */
  eventsMatchEdges: 'driver-visible events equal the edges modulo coalescing',
  /** The device answers each request as the spec's rules say (and the driver reports no rule broken). */
  protocol: 'device and driver follow the protocol rules',
} as const;
export type Invariant = (typeof Invariant)[keyof typeof Invariant];
