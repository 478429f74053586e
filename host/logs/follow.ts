import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOG_STREAMS, readLogs, type LogEntry, type LogStream } from './read.js';

export interface FollowOptions {
  /** Start after this cursor; absent: from the first line kept. */
  since?: string;
  /** Start with only the last lines (bytes of text); ignored with `since`. */
  tailBytes?: number;
  /** ...and at most this many of them (with tailBytes). */
  tailLines?: number;
  /** Only this stream's lines. */
  stream?: LogStream;
  intervalMs?: number;
  /** Ends the follow (the promise resolves after a last read). */
  signal?: AbortSignal;
  /** Resolves true when the writer has ended (the container stopped): a last read, then the follow ends. */
  ended?: () => Promise<boolean>;
}

/**
 * Follows a container's log directory (`ct run`, `ct host logs -f`): polls the two streams'
 * `current` files, and reads again only when one changed (size or mtime), resuming after the last
 * line delivered, so a rotation in between loses nothing. Each entry is delivered once, in order.
 */
export async function followLogs(logDir: string, onEntry: (e: LogEntry) => void, o: FollowOptions = {}): Promise<string | undefined> {
  const interval = o.intervalMs ?? 200;
  let cursor = o.since;
  if (cursor === undefined && o.tailBytes !== undefined) {
    const first = await readLogs(logDir, { maxBytes: o.tailBytes, maxLines: o.tailLines, stream: o.stream });
    for (const e of first.entries) onEntry(e);
    cursor = first.cursor ?? `${'0'.repeat(24)}+0`;
  }
  let seen = '';
  const changed = async (): Promise<boolean> => {
    const now = (await Promise.all(LOG_STREAMS.map((s) => stat(join(logDir, s, 'current')).then((st) => `${st.ino}:${st.size}:${st.mtimeMs}`, () => '-')))).join('/');
    if (now === seen) return false;
    seen = now;
    return true;
  };
  for (;;) {
    const last = o.signal?.aborted || (o.ended ? await o.ended() : false);
    if ((await changed()) || last) {
      for (;;) {
        // Bounded pages: a follower that fell behind catches up without reading everything at once.
        const page = await readLogs(logDir, { since: cursor ?? `${'0'.repeat(24)}+0`, maxBytes: 1 << 20, stream: o.stream });
        for (const e of page.entries) onEntry(e);
        if (page.entries.length === 0) break;
        cursor = page.cursor;
      }
    }
    if (last) return cursor;
    // timers/promises removes its abort listener when the timer fires: one added per poll and
    // never removed grew without bound (Node's MaxListenersExceededWarning after 10 polls).
    await sleep(interval, undefined, { signal: o.signal }).catch((e: unknown) => {
      if ((e as Error).name !== 'AbortError') throw e;
    });
  }
}
