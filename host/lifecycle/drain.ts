import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** TCP conntrack states of a connection that is not over yet. */
const LIVE = new Set(['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'SYN_SENT2']);

/**
 * How many TCP connections to `address` (the reply direction comes from it: connections made to
 * the container, through a published port or not) are still live in the kernel's conntrack table,
 * or undefined when the table cannot be read (no /proc/net/nf_conntrack on this kernel).
 */
export async function liveConnectionsTo(address: string, table = '/proc/net/nf_conntrack'): Promise<number | undefined> {
  const needle = ` src=${address} `;
  let n = 0;
  try {
    const lines = createInterface({ input: createReadStream(table, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.includes(needle)) continue;
      const f = line.split(/\s+/);
      if (f[2] !== 'tcp' || !LIVE.has(f[5])) continue;
      // The reply tuple is the second src=: the container answers these connections.
      const srcs = f.filter((x) => x.startsWith('src='));
      if (srcs[1] === `src=${address}`) n++;
    }
    return n;
  } catch {
    return undefined;
  }
}

/**
 * Waits, after the ports left a container, until the connections it already had are over: at
 * least `minMs` (requests in flight), then until conntrack shows no live connection to it, at most
 * `maxMs`. On a busy host a client's SYN that the old listener's backlog dropped is retried by the
 * kernel after 1 and 3 s and still goes to the old container (its conntrack entry was made before
 * the switch): stopping the old one before that would lose the request. Without a readable
 * conntrack table, only `minMs`.
 */
export async function drain(address: string, o: { minMs: number; maxMs: number; pollMs?: number }): Promise<{ waitedMs: number; left: number | undefined }> {
  const t0 = Date.now();
  await sleep(o.minMs);
  let left = await liveConnectionsTo(address);
  while (left !== undefined && left > 0 && Date.now() - t0 < o.maxMs) {
    await sleep(o.pollMs ?? 100);
    left = await liveConnectionsTo(address);
  }
  return { waitedMs: Date.now() - t0, left };
}
