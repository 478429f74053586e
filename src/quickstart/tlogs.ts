/**
 * `ct quickstart`'s two transparency logs: started in this process on the ports kept in
 * quickstart.json. A port another program took between two runs moves the log to a new one (as
 * the registry and the server move, ports.ts), and the trust store, which says where each log is,
 * follows it.
 */
import { join } from 'node:path';
import { CtError } from '../core/errors.js';
import { startLogServer, type LogServer } from '../tlog/server.js';
import { addLog } from '../trust/edit.js';
import { parsePublicKey } from '../trust/keys.js';
import { loadTrustStore, ownEntry, saveTrustStore } from '../trust/store.js';
import type { TrustStore } from '../trust/types.js';
import { freePort } from './ports.js';
import type { Layout, QuickstartState } from './setup.js';

export type LogPort = 'log1' | 'log2';

/** The logs quickstart runs: port name in quickstart.json, log id, operator. */
export const LOGS: readonly (readonly [LogPort, string, string])[] = [['log1', 'log-one', 'Operator One'], ['log2', 'log-two', 'Operator Two']];

/** Binding a port freePort found may still lose it to another program before the bind: tries in all. */
const LOG_STARTS = 3;

export interface StartedLog {
  log: LogServer;
  port: number;
}

/** Starts the log on its kept port, or on a new free one (none of quickstart's other ports) if that one is taken. */
export async function startLogMoving(l: Layout, state: QuickstartState, name: LogPort, logId: string, operator: string): Promise<StartedLog> {
  let port = state.ports[name];
  for (let start = 1; ; start++) {
    try {
      const log = await startLogServer({ db: join(l.dir, 'tlog', `${name}.db`), port, logId, operator });
      return { log, port: Number(new URL(log.url).port) };
    } catch (e) {
      // Only a taken port moves the log; any other failure (its database, its key) stands.
      if (!(e instanceof CtError && e.details.errno === 'EADDRINUSE') || start >= LOG_STARTS) throw e;
      port = await freePort(Object.entries(state.ports).filter(([k]) => k !== name).map(([, p]) => p));
    }
  }
}

/**
 * The trust store's entries of logs listening elsewhere than it says, at their URLs now (each
 * log's key and operator unchanged); what was done or left, as lines to print. A log the user
 * removed from the store stays removed, and a signed store (`ct trust-store sign`) is left as it
 * is: an edit would drop its signatures, and the user re-signs what they changed themselves.
 */
export async function followLogsInTrustStore(l: Layout, logs: readonly LogServer[]): Promise<string[]> {
  const store = await loadTrustStore(l.trustStore);
  const stale = logs.filter((log) => { const entry = ownEntry(store.logs, log.logId); return entry !== undefined && entry.url !== log.url; });
  if (stale.length === 0) return [];
  const where = stale.map((log) => `${log.logId} at ${ownEntry(store.logs, log.logId)!.url}, it listens on ${log.url}`).join('; ');
  if (store.signatures?.length) {
    return [`the trust store ${l.trustStore} lists ${where}: it is signed, so it is left as it is; update it (ct trust-store add-log) and sign it again`];
  }
  let next = store;
  for (const log of stale) next = withLog(next, log);
  await saveTrustStore(l.trustStore, next);
  return [`the trust store ${l.trustStore} listed ${where}: updated`];
}

/** The store with the log's entry (added, or replaced under its id). */
export function withLog(store: TrustStore, log: Pick<LogServer, 'logId' | 'operator' | 'publicKey' | 'url'>): TrustStore {
  return addLog(store, log.logId, { operator: log.operator, publicKey: parsePublicKey(log.publicKey, `log ${log.logId}`), url: log.url });
}
