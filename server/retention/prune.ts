import type { Logger } from 'pino';
import { CtError } from '../../src/core/errors.js';
import type { Db } from '../store/db.js';
import { pruneBundles } from './bundles.js';

/**
 * How long the server keeps what arrives without bound. Host monitor alerts (`host.alert` in the
 * audit log) come at up to ~2 a second per host (server/channel/alert-budget.ts), so they are
 * kept for a time and up to a count per host (a flooding host pushes out its own alerts, not the
 * others'), with a total as the last bound of the disk; webhook delivery ids are kept as long as a
 * forge may send the same delivery again, which is all their dedupe needs. Every other audit
 * record (who deployed, synced, signed in) is kept: those are the records an audit asks for.
 */
export interface RetentionConfig {
  /** Days a host alert is kept (default 30). */
  alertDays: number;
  /** Most alerts kept per host, its newest (default 100,000). */
  maxAlertsPerHost: number;
  /** Most host alerts kept in all, the newest (default 1,000,000): reached only when many hosts flood at once. */
  maxAlerts: number;
  /** Days a webhook delivery id is remembered for its dedupe (default 7: GitHub Enterprise Server redelivers for 7 days, github.com for 3). */
  deliveryDays: number;
  /** Hours a fetched bundle no deployment names is kept unused (default 24; bundles.ts). */
  unusedBundleHours: number;
  /** Days the record of a desired-state reconcile is kept (default 30): one is written at every poll. */
  reconcileDays: number;
}

export const RETENTION_DEFAULTS: RetentionConfig = { alertDays: 30, maxAlertsPerHost: 100_000, maxAlerts: 1_000_000, deliveryDays: 7, unusedBundleHours: 24, reconcileDays: 30 };

const BOUNDS: Record<keyof RetentionConfig, [number, number]> = {
  alertDays: [1, 3650],
  maxAlertsPerHost: [100, 100_000_000],
  maxAlerts: [1000, 1_000_000_000],
  deliveryDays: [7, 365],
  unusedBundleHours: [1, 8760],
  reconcileDays: [1, 3650],
};

/** The configured retention over the defaults; a value out of its bounds is USAGE (a typo must not delete a year of records). */
export function retentionConfig(v: unknown): RetentionConfig {
  if (v === undefined || v === null) return { ...RETENTION_DEFAULTS };
  if (typeof v !== 'object' || Array.isArray(v)) throw new CtError('USAGE', 'retention must be a mapping (alertDays, maxAlertsPerHost, maxAlerts, deliveryDays, unusedBundleHours, reconcileDays)');
  const out = { ...RETENTION_DEFAULTS };
  for (const [k, value] of Object.entries(v)) {
    // Own fields only: `constructor` or `toString` must not pass as known ones.
    if (!Object.hasOwn(BOUNDS, k)) throw new CtError('USAGE', `retention.${k.slice(0, 64)}: unknown field (alertDays, maxAlertsPerHost, maxAlerts, deliveryDays, unusedBundleHours, reconcileDays)`);
    const [min, max] = BOUNDS[k as keyof RetentionConfig];
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      throw new CtError('USAGE', `retention.${k} must be a whole number from ${min} to ${max}`);
    }
    out[k as keyof RetentionConfig] = value as number;
  }
  return out;
}

const DAY_MS = 86_400_000;

/**
 * Deletes are paced: SQLite has one writer and better-sqlite3 runs on the event loop, and a row of
 * the audit log costs ~50 µs to delete (five B-trees), so a backlog (the first pass over a large
 * log) goes in statements of about STATEMENT_MS each, the chunk resized after each to stay near it,
 * with the loop left free for twice as long in between. PostgreSQL takes the same pace.
 */
const STATEMENT_MS = 10;
const MIN_CHUNK = 50;
const MAX_CHUNK = 5000;

export interface PruneOptions {
  now?: number;
  /** A fixed chunk instead of the paced one (tests). */
  chunk?: number;
  /** Asked before each statement: a pass stops early (server shutdown) and the next one goes on. */
  stopped?: () => boolean;
  /** The bundle store to prune too (`<dataDir>/bundles`). */
  bundlesDir?: string;
}

export interface Pruned {
  alerts: number;
  deliveries: number;
  bundles: number;
  reconciles: number;
}

class Pace {
  size: number;
  constructor(private readonly fixed?: number) {
    this.size = fixed ?? 500;
  }

  async after(ms: number): Promise<void> {
    if (this.fixed === undefined) {
      if (ms > 2 * STATEMENT_MS) this.size = Math.max(MIN_CHUNK, Math.floor(this.size / 2));
      else if (ms < STATEMENT_MS / 2) this.size = Math.min(MAX_CHUNK, this.size * 2);
    }
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(1, 2 * ms))));
  }
}

/**
 * Deletes the host alerts `where` selects (oldest first), a chunk at a time until none is left or
 * the pass is stopped; how many. On PostgreSQL the rows a concurrent pass (another replica) holds
 * are skipped, not waited for: two passes deleting the same rows in different orders deadlocked.
 */
function deleteAlerts(db: Db, where: string, params: unknown[], pace: Pace, stopped: () => boolean): Promise<number> {
  return deleteOldest(db, 'audit', `kind = 'host.alert' AND ${where}`, params, pace, stopped);
}

/** Deletes the rows of `table` (an `id` and a `time` column) that `where` selects, oldest first, as deleteAlerts says. */
async function deleteOldest(db: Db, table: 'audit' | 'reconciles', where: string, params: unknown[], pace: Pace, stopped: () => boolean): Promise<number> {
  const skip = db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
  let total = 0;
  while (!stopped()) {
    const chunk = pace.size;
    const t0 = performance.now();
    const { changes } = await db.run(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${where} ORDER BY time LIMIT ?${skip})`, [...params, chunk]);
    total += changes;
    if (changes < chunk) break;
    await pace.after(performance.now() - t0);
  }
  return total;
}

/** The time of the newest alert beyond the first `keep` of `where`, newest first (a seek on audit_kind_subject_time or audit_kind_time). */
async function beyond(db: Db, where: string, params: unknown[], keep: number): Promise<number | undefined> {
  const [row] = await db.query<{ time: number | string }>(`SELECT time FROM audit WHERE kind = 'host.alert' AND ${where} ORDER BY time DESC LIMIT 1 OFFSET ?`, [...params, keep]);
  return row ? Number(row.time) : undefined;
}

/**
 * One pass: host alerts older than `alertDays`, beyond each enrolled host's newest
 * `maxAlertsPerHost`, then beyond the newest `maxAlerts` of all; webhook deliveries older than
 * `deliveryDays`; bundles no deployment names, unused for `unusedBundleHours`; reconcile records
 * older than `reconcileDays` (the newest is a poll old, so GET /api/v1/sync keeps one). Several replicas
 * may run passes at once.
 */
export async function pruneOnce(db: Db, cfg: RetentionConfig, opts: PruneOptions = {}): Promise<Pruned> {
  const now = opts.now ?? Date.now();
  const stopped = opts.stopped ?? (() => false);
  const pace = new Pace(opts.chunk);
  let alerts = await deleteAlerts(db, 'time < ?', [now - cfg.alertDays * DAY_MS], pace, stopped);
  for (const { id } of await db.query<{ id: string }>('SELECT id FROM hosts ORDER BY id')) {
    if (stopped()) break;
    const t = await beyond(db, 'subject = ?', [id], cfg.maxAlertsPerHost);
    if (t !== undefined) alerts += await deleteAlerts(db, 'subject = ? AND time <= ?', [id, t], pace, stopped);
  }
  const t = stopped() ? undefined : await beyond(db, '1 = 1', [], cfg.maxAlerts);
  if (t !== undefined) alerts += await deleteAlerts(db, 'time <= ?', [t], pace, stopped);
  // Deliveries are a few per push: one statement (index deliveries_received).
  const deliveries = stopped() ? 0 : (await db.run('DELETE FROM deliveries WHERE received_at < ?', [now - cfg.deliveryDays * DAY_MS])).changes;
  const bundles = opts.bundlesDir && !stopped() ? await pruneBundles(db, opts.bundlesDir, cfg.unusedBundleHours * 3_600_000, now, stopped) : 0;
  // A reconcile record a poll (1,440 a day at the default 60 s, 17,280 at 5 s): index reconciles_time.
  const reconciles = await deleteOldest(db, 'reconciles', 'time < ?', [now - cfg.reconcileDays * DAY_MS], pace, stopped);
  return { alerts, deliveries, bundles, reconciles };
}

/** How often the pruner runs, and how soon after start (a restart loop must not prune at every start). */
export const PRUNE_EVERY_MS = 3_600_000;
const FIRST_AFTER_MS = 60_000;

/**
 * Runs pruneOnce every hour (the first a minute after start), one pass at a time; a failed pass is
 * logged and tried again at the next hour. `stop` ends a pass in progress at its next statement
 * and waits for that (the database closes after it).
 */
export function startRetention(db: Db, cfg: RetentionConfig, log: Logger, opts: { everyMs?: number; firstAfterMs?: number; bundlesDir?: string } = {}): { stop(): Promise<void>; runNow(): Promise<Pruned | undefined> } {
  let running: Promise<Pruned | undefined> | undefined;
  let stopped = false;
  const pass = (): Promise<Pruned | undefined> => {
    if (stopped) return Promise.resolve(undefined);
    running ??= pruneOnce(db, cfg, { stopped: () => stopped, ...(opts.bundlesDir ? { bundlesDir: opts.bundlesDir } : {}) })
      .then((p) => {
        if (p.alerts || p.deliveries || p.bundles || p.reconciles) log.info({ ...p }, 'retention: old records deleted');
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
