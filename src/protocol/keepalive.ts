/** What keepAlive needs of a WebSocket (ws's): the library does not depend on ws for it. */
export interface Pingable {
  readonly readyState: number;
  readonly OPEN: number;
  ping(): void;
  pong(): void;
  terminate(): void;
  on(event: 'pong', fn: () => void): unknown;
  once(event: 'close', fn: () => void): unknown;
}

/**
 * The TCP socket under the WebSocket (node:net's), for its public byte counters: the server has it
 * in its 'upgrade' handler, the agent from the client's 'upgrade' response (res.socket).
 */
export interface ByteCounted {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  on(event: 'data', fn: () => void): unknown;
  off(event: 'data', fn: () => void): unknown;
}

/** Unanswered pings after which the peer is taken as gone. */
export const MISSED_PINGS = 2;

/**
 * At most this often, a peer that is receiving but sending nothing says so with an unsolicited
 * pong (RFC 6455 5.5.3: a unidirectional heartbeat). As often as the shortest ping interval the
 * server accepts (hostChannel.pingMs >= 100), so that a sender pinging that often hears it.
 */
export const RECEIVING_PONG_MS = 100;

/**
 * Keeps an authenticated channel honest about its peer: a ping every `intervalMs`, and once
 * MISSED_PINGS intervals in a row have passed without a sign of life the socket is terminated (not
 * closed: a close waits for an answer the silent peer never sends), so its 'close' handler runs
 * (the server marks the host disconnected, the agent connects again). Without it a peer whose
 * network dropped without a FIN stayed connected for good on the other end, TCP having nothing to
 * send. The peer's ws answers pings by itself; `onDead` runs just before the termination (a log line).
 *
 * A sign of life is a pong or any byte read. ws sends a message as one frame, so a ping or pong
 * queued behind a 1 MiB frame crosses a slow link only after it: counting pongs alone, the end
 * receiving the frame cut a healthy peer that was still sending it (its bytes arrive meanwhile),
 * and so did the end sending it (nothing comes back while the peer waits for the rest). For the
 * sender, the receiving end sends an unsolicited pong while bytes arrive and it writes nothing
 * itself. Node's bytesWritten counts what is still buffered in the process, and a frame is one
 * write, so the sender cannot see its own frame leave: the receiver is the one who can tell. A
 * dead link still ends the channel in MISSED_PINGS intervals: nothing arrives on either end.
 */
export function keepAlive(ws: Pingable, raw: ByteCounted, intervalMs: number, onDead?: () => void): void {
  let missed = 0;
  let read = raw.bytesRead;
  ws.on('pong', () => {
    missed = 0;
  });
  // Our own writes are life to the peer already: only a receiving end that writes nothing pongs.
  let written = raw.bytesWritten;
  let quietSince = Date.now();
  const onData = () => {
    if (ws.readyState !== ws.OPEN) return;
    const now = Date.now();
    if (raw.bytesWritten !== written) {
      written = raw.bytesWritten;
      quietSince = now;
      return;
    }
    if (now - quietSince < RECEIVING_PONG_MS) return;
    quietSince = now;
    try {
      ws.pong();
    } catch {
      // Closing meanwhile: its 'close' removes this listener.
    }
    written = raw.bytesWritten;
  };
  raw.on('data', onData);
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    if (raw.bytesRead !== read) {
      read = raw.bytesRead;
      missed = 0;
    }
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
  ws.once('close', () => {
    clearInterval(timer);
    raw.off('data', onData);
  });
}
