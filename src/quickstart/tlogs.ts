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
import { loadTrustStore, saveTrustStore } from '../trust/store.js';
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

/** The trust store's entries of the logs that moved, at their new URLs (each log's key and operator unchanged). */
export async function moveLogsInTrustStore(l: Layout, moved: readonly LogServer[]): Promise<void> {
  let store = await loadTrustStore(l.trustStore);
  for (const log of moved) store = withLog(store, log);
  await saveTrustStore(l.trustStore, store);
}

/** The store with the log's entry (added, or replaced under its id). */
export function withLog(store: TrustStore, log: Pick<LogServer, 'logId' | 'operator' | 'publicKey' | 'url'>): TrustStore {
  return addLog(store, log.logId, { operator: log.operator, publicKey: parsePublicKey(log.publicKey, `log ${log.logId}`), url: log.url });
}
