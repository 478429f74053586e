/** What keepAlive needs of a WebSocket (ws's): the library does not depend on ws for it. */
export interface Pingable {
  readonly readyState: number;
  readonly OPEN: number;
  ping(): void;
  terminate(): void;
  on(event: 'pong', fn: () => void): unknown;
  once(event: 'close', fn: () => void): unknown;
}

/** Unanswered pings after which the peer is taken as gone. */
export const MISSED_PINGS = 2;

/**
 * Keeps an authenticated channel honest about its peer: a ping every `intervalMs`, and once
 * MISSED_PINGS in a row have had no pong the socket is terminated (not closed: a close waits for
 * an answer the silent peer never sends), so its 'close' handler runs (the server marks the host
 * disconnected, the agent connects again). Without it a peer whose network dropped without a FIN
 * stayed connected for good on the other end, TCP having nothing to send. The peer's ws answers
 * pings by itself; `onDead` runs just before the termination (a log line).
 */
export function keepAlive(ws: Pingable, intervalMs: number, onDead?: () => void): void {
  let missed = 0;
  ws.on('pong', () => {
    missed = 0;
  });
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    if (missed >= MISSED_PINGS) {
      clearInterval(timer);
      onDead?.();
      ws.terminate();
      return;
    }
    missed++;
    try {
      ws.ping();
    } catch {
      // Closing meanwhile: its 'close' clears the timer.
    }
  }, intervalMs);
  timer.unref();
  ws.once('close', () => clearInterval(timer));
}
