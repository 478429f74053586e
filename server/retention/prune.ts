import type { Logger } from 'pino';
import { CtError } from '../../src/core/errors.js';
import type { Db } from '../store/db.js';

/**
 * How long the server keeps what arrives without bound. Host monitor alerts (`host.alert` in the
 * audit log) come at up to ~2 a second per host (server/channel/alert-budget.ts), so they are
 * kept for a time and up to a count; webhook deliveries are kept only as long as a forge may send
 * the same one again (GitHub redelivers for 3 days), which is all the dedupe needs. Every other
 * audit record (who deployed, synced, signed in) is kept: those are the records an audit asks for.
 */
export interface RetentionConfig {
  /** Days a host alert is kept (default 30). */
  alertDays: number;
  /** Most host alerts kept, the newest (default 1,000,000): a flood within the days is bounded too. */
  maxAlerts: number;
  /** Days a webhook delivery id is remembered for its dedupe (default 7). */
  deliveryDays: number;
}

export const RETENTION_DEFAULTS: RetentionConfig = { alertDays: 30, maxAlerts: 1_000_000, deliveryDays: 7 };

const BOUNDS: Record<keyof RetentionConfig, [number, number]> = {
  alertDays: [1, 3650],
  maxAlerts: [1000, 1_000_000_000],
  deliveryDays: [1, 365],
};

/** The configured retention over the defaults; a value out of its bounds is USAGE (a typo must not delete a year of records). */
export function retentionConfig(v: unknown): RetentionConfig {
  if (v === undefined || v === null) return { ...RETENTION_DEFAULTS };
  if (typeof v !== 'object' || Array.isArray(v)) throw new CtError('USAGE', 'retention must be a mapping (alertDays, maxAlerts, deliveryDays)');
  const out = { ...RETENTION_DEFAULTS };
  for (const [k, value] of Object.entries(v)) {
    const bounds = BOUNDS[k as keyof RetentionConfig];
    if (!bounds) throw new CtError('USAGE', `retention.${k.slice(0, 64)}: unknown field (alertDays, maxAlerts, deliveryDays)`);
    if (!Number.isInteger(value) || (value as number) < bounds[0] || (value as number) > bounds[1]) {
      throw new CtError('USAGE', `retention.${k} must be a whole number from ${bounds[0]} to ${bounds[1]}`);
    }
    out[k as keyof RetentionConfig] = value as number;
  }
  return out;
}

const DAY_MS = 86_400_000;
/**
 * Rows deleted per statement: SQLite has one writer and better-sqlite3 runs on the event loop, so a
 * backlog (the first prune of a year-old database) is deleted in short statements with the loop
 * free in between, not in one that holds both for seconds.
 */
export const PRUNE_CHUNK = 5000;

export interface Pruned {
  alerts: number;
  deliveries: number;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/** Deletes `select`'s rows (ids, oldest first) PRUNE_CHUNK at a time, until none is left; how many. */
async function deleteChunked(db: Db, table: 'audit', select: string, params: unknown[], chunk: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { changes } = await db.run(`DELETE FROM ${table} WHERE id IN (${select} LIMIT ?)`, [...params, chunk]);
    total += changes;
    if (changes < chunk) return total;
    await turn();
  }
}

/**
 * One pass: host alerts older than `alertDays` or beyond the newest `maxAlerts`, and webhook
 * deliveries older than `deliveryDays`. Safe to run on several replicas at once (each delete
 * only removes what every replica would).
 */
export async function pruneOnce(db: Db, cfg: RetentionConfig, now = Date.now(), chunk = PRUNE_CHUNK): Promise<Pruned> {
  let cutoff = now - cfg.alertDays * DAY_MS;
  // The time of the newest alert beyond the count (index audit_kind_time): it and everything older go.
  const [over] = await db.query<{ time: number | string }>(`SELECT time FROM audit WHERE kind = 'host.alert' ORDER BY time DESC LIMIT 1 OFFSET ?`, [cfg.maxAlerts]);
  if (over) cutoff = Math.max(cutoff, Number(over.time) + 1);
  const alerts = await deleteChunked(db, 'audit', `SELECT id FROM audit WHERE kind = 'host.alert' AND time < ? ORDER BY time`, [cutoff], chunk);
  // Deliveries are a few per push: one statement (index deliveries_received).
  const { changes: deliveries } = await db.run('DELETE FROM deliveries WHERE received_at < ?', [now - cfg.deliveryDays * DAY_MS]);
  // SQLite keeps no table statistics by itself: without them its planner reads an app's alerts
  // newest first through every host's (audit_kind_time) rather than seek its hosts' own
  // (audit_kind_subject_time), ~10× slower on a large log. `PRAGMA optimize` gathers them where they
  // are missing or stale (sampled: milliseconds), as SQLite advises long-lived connections to do
  // hourly. PostgreSQL's autovacuum keeps its own.
  if (db.dialect === 'sqlite') await db.run('PRAGMA optimize');
  return { alerts, deliveries };
}

/** How often the pruner runs, and how soon after start (a restart loop must not prune at every start). */
export const PRUNE_EVERY_MS = 3_600_000;
const FIRST_AFTER_MS = 60_000;

/**
 * Runs pruneOnce every hour (the first a minute after start), one pass at a time; a failed pass is
 * logged and tried again at the next hour. `stop` waits for a pass in progress (the database
 * closes after it).
 */
export function startRetention(db: Db, cfg: RetentionConfig, log: Logger, opts: { everyMs?: number; firstAfterMs?: number } = {}): { stop(): Promise<void>; runNow(): Promise<Pruned | undefined> } {
  let running: Promise<Pruned | undefined> | undefined;
  let stopped = false;
  const pass = (): Promise<Pruned | undefined> => {
    if (stopped) return Promise.resolve(undefined);
    running ??= pruneOnce(db, cfg)
      .then((p) => {
        if (p.alerts || p.deliveries) log.info({ ...p }, 'retention: old records deleted');
        return p;
      })
      .catch((e) => {
        log.warn({ err: (e as Error).message }, 'retention pass failed; tried again at the next one');
        return undefined;
      })
      .finally(() => (running = undefined));
    return running;
  };
  const first = setTimeout(() => void pass(), opts.firstAfterMs ?? FIRST_AFTER_MS);
  const every = setInterval(() => void pass(), opts.everyMs ?? PRUNE_EVERY_MS);
  first.unref();
  every.unref();
  return {
    runNow: pass,
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(every);
      await running;
    },
  };
}
