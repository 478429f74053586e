/**
 * The wait before the agent opens its channel again: `ms` (the backoff, doubled at each failure)
 * spread over ±50 %. Without the spread a fleet that lost its server at once (a restart, a network
 * cut) retried in lockstep, every host at the same instants: behind one address they hit the
 * server's per-address limit of pending handshakes together at every attempt, and most were
 * refused again, each time.
 */
export function jittered(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (0.5 + random()));
}
