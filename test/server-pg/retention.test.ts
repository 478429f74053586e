/**
 * Retention (server/retention/prune.ts), on SQLite and on PostgreSQL: host alerts older than their
 * days or beyond the newest maxAlerts are deleted, in chunks, and nothing else of the audit log is;
 * a flooding host pushes out its own alerts, not other hosts'; webhook delivery ids go after their
 * days; the settings are checked at start; a server stopping ends a pass at its next statement;
 * the queries the pruner and the Evidence page run seek the indexes made for them even without
 * table statistics (a seek, not a scan of the log).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { loadConfig } from '../../server/config.js';
import { pruneOnce, retentionConfig, RETENTION_DEFAULTS, startRetention } from '../../server/retention/prune.js';
import { openDialectDb } from '../support/dialect-db.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 6);

async function put(db: Db, rows: { id: string; time: number; kind: string; subject?: string }[]): Promise<void> {
  await db.tx(async (t) => {
    for (const r of rows) await t.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [r.id, r.time, r.kind, r.subject ?? 'h1', '{}']);
  });
}
const ids = async (db: Db, kind: string) => (await db.query<{ id: string }>('SELECT id FROM audit WHERE kind = ? ORDER BY time, id', [kind])).map((r) => r.id);

describe.each(['sqlite', 'postgres'])('retention on %s', (dialect) => {
  let store: Awaited<ReturnType<typeof openDialectDb>> | undefined;
  let db: Db;
  beforeAll(async () => {
    store = await openDialectDb(dialect, 'ct-retention-');
    db = store.db;
    await migrate(db);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
  });

  const hosts = async (...names: string[]) => {
    await db.run('DELETE FROM hosts');
    for (const h of names) await db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [h, h, 'k', '{}', '{}', 0]);
  };

  it('deletes alerts past their days, beyond each host\'s count and beyond the total, in chunks, and keeps every other record', async () => {
    await db.run('DELETE FROM audit');
    await hosts('h1', 'h2', 'flood');
    const rows = [];
    // 25 alerts 40 days old, 10 from 29 days ago to now; other kinds as old as the oldest alert.
    for (let i = 0; i < 25; i++) rows.push({ id: `old-${String(i).padStart(2, '0')}`, time: NOW - 40 * DAY + i, kind: 'host.alert' });
    for (let i = 0; i < 10; i++) rows.push({ id: `new-${i}`, time: NOW - (29 - i * 3) * DAY, kind: 'host.alert', subject: i < 5 ? 'h1' : 'h2' });
    rows.push({ id: 'deploy-old', time: NOW - 400 * DAY, kind: 'deploy' }, { id: 'login-old', time: NOW - 400 * DAY, kind: 'ui.login' });
    await put(db, rows);
    // Chunks of 4: 25 old rows take 7 statements; the count is what was deleted.
    const first = await pruneOnce(db, RETENTION_DEFAULTS, { now: NOW, chunk: 4 });
    expect(first.alerts).toBe(25);
    expect(await ids(db, 'host.alert')).toEqual(Array.from({ length: 10 }, (_, i) => `new-${i}`));
    expect(await ids(db, 'deploy')).toEqual(['deploy-old']);
    expect(await ids(db, 'ui.login')).toEqual(['login-old']);
    // A host flooding in the last hour pushes out its own alerts beyond its count, not h1's or h2's
    // (older than every one of its own).
    await put(db, Array.from({ length: 150 }, (_, i) => ({ id: `f${String(i).padStart(3, '0')}`, time: NOW - 3_600_000 + i, kind: 'host.alert', subject: 'flood' })));
    expect((await pruneOnce(db, { ...RETENTION_DEFAULTS, maxAlertsPerHost: 100 }, { now: NOW, chunk: 7 })).alerts).toBe(50);
    const left = await ids(db, 'host.alert');
    expect(left.filter((id) => id.startsWith('new-'))).toHaveLength(10);
    expect(left.filter((id) => id.startsWith('f'))).toEqual(Array.from({ length: 100 }, (_, i) => `f${String(i + 50).padStart(3, '0')}`));
    // The total: only the newest maxAlerts stay, whatever their age or host.
    await db.run(`DELETE FROM audit WHERE subject = 'flood'`);
    expect((await pruneOnce(db, { ...RETENTION_DEFAULTS, maxAlerts: 3 }, { now: NOW, chunk: 4 })).alerts).toBe(7);
    expect(await ids(db, 'host.alert')).toEqual(['new-7', 'new-8', 'new-9']);
    // Nothing left to delete: a second pass deletes nothing.
    expect(await pruneOnce(db, { ...RETENTION_DEFAULTS, maxAlerts: 3 }, { now: NOW, chunk: 4 })).toEqual({ alerts: 0, deliveries: 0, bundles: 0, reconciles: 0 });
    expect(await ids(db, 'host.alert')).toHaveLength(3);
  });

  it('forgets webhook deliveries after their days: the same id is then taken as new', async () => {
    await db.run('DELETE FROM deliveries');
    for (const [id, age] of [['d-old', 8], ['d-edge', 6], ['d-new', 0]] as const) {
      await db.run('INSERT INTO deliveries (source, id, event, received_at) VALUES (?, ?, ?, ?)', ['github', id, 'push', NOW - age * DAY]);
    }
    expect((await pruneOnce(db, RETENTION_DEFAULTS, { now: NOW })).deliveries).toBe(1);
    expect((await db.query<{ id: string }>('SELECT id FROM deliveries ORDER BY id')).map((r) => r.id)).toEqual(['d-edge', 'd-new']);
  });

  it('deletes the records of reconciles past their days (one is written at every poll), oldest first, in chunks', async () => {
    await db.run('DELETE FROM reconciles');
    const rows: [string, number][] = [...Array.from({ length: 9 }, (_, i): [string, number] => [`r-old-${i}`, 31 + i]), ['r-edge', 29], ['r-new', 0]];
    for (const [id, age] of rows) {
      await db.run('INSERT INTO reconciles (id, repo, commit_sha, previous_sha, outcome, message, trigger, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [id, '/srv/desired.git', 'c', 'c', 'up-to-date', null, 'poll', NOW - age * DAY]);
    }
    expect((await pruneOnce(db, RETENTION_DEFAULTS, { now: NOW, chunk: 4 })).reconciles).toBe(9);
    expect((await db.query<{ id: string }>('SELECT id FROM reconciles ORDER BY time DESC')).map((r) => r.id)).toEqual(['r-new', 'r-edge']);
    expect((await pruneOnce(db, { ...RETENTION_DEFAULTS, reconcileDays: 1 }, { now: NOW })).reconciles).toBe(1);
  });

  it('removes fetched bundles no deployment or host assignment names once a day unused, and a killed fetch\'s temporary file; keeps the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-retention-bundles-'));
    const hex = (c: string) => c.repeat(64);
    const file = (name: string, hoursOld: number) => {
      writeFileSync(join(dir, name), 'x');
      const t = new Date(NOW - hoursOld * 3_600_000);
      utimesSync(join(dir, name), t, t);
    };
    file(`${hex('a')}.ctp`, 48); // deployed (a rollback reads it again)
    file(`${hex('b')}.ctp`, 48); // assigned to a host
    file(`${hex('c')}.ctp`, 48); // verified through the API only, two days unused
    file(`${hex('d')}.ctp`, 1); // the same, an hour ago
    file('.fetch.ctp.0123456789ab.tmp', 48); // a fetch a killed server left
    file('notes.txt', 48); // not the store's
    await db.run('DELETE FROM deployments');
    await db.run('DELETE FROM host_bundles');
    await db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, created_at, updated_at, bundle_digest) VALUES ('d1', 'prod', 'web', 'c1', 'r', 'failed', 0, 0, ?)`, [`sha256:${hex('a')}`]);
    await db.run('INSERT INTO host_bundles (host_id, bundle_digest, assigned_at) VALUES (?, ?, ?)', ['h1', `sha256:${hex('b')}`, 0]);
    expect((await pruneOnce(db, RETENTION_DEFAULTS, { now: NOW, bundlesDir: dir })).bundles).toBe(2);
    expect(readdirSync(dir).sort()).toEqual([`${hex('a')}.ctp`, `${hex('b')}.ctp`, `${hex('d')}.ctp`, 'notes.txt']);
    // A store that does not exist yet is no error.
    expect((await pruneOnce(db, RETENTION_DEFAULTS, { now: NOW, bundlesDir: join(dir, 'none') })).bundles).toBe(0);
  });

  it('runs on its timer, one pass at a time; stop ends a pass at its next statement and waits for it', async () => {
    await db.run('DELETE FROM audit');
    await hosts();
    await put(db, Array.from({ length: 40 }, (_, i) => ({ id: `x${i}`, time: i, kind: 'host.alert' })).concat([{ id: 'fresh', time: Date.now(), kind: 'host.alert' }]));
    // A database whose deletes wait for the test: the pass is held in its first statement.
    const statements: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const gated: Db = {
      ...db,
      query: (sql, params) => db.query(sql, params),
      run: async (sql, params) => {
        statements.push(sql);
        if (sql.startsWith('DELETE FROM audit')) await held;
        return db.run(sql, params);
      },
    };
    const r = startRetention(gated, RETENTION_DEFAULTS, pino({ level: 'silent' }), { firstAfterMs: 20, everyMs: 60_000 });
    // The first pass starts on its own, from the timer.
    for (let i = 0; i < 100 && statements.length === 0; i++) await new Promise((w) => setTimeout(w, 10));
    expect(statements).toHaveLength(1);
    expect(r.runNow()).toBe(r.runNow());
    let stopped = false;
    const stopping = r.stop().then(() => (stopped = true));
    await new Promise((w) => setTimeout(w, 50));
    expect(stopped).toBe(false);
    release();
    await stopping;
    // The statement in progress completed (whole), and no other followed it.
    expect(statements).toHaveLength(1);
    expect((await ids(db, 'host.alert')).length).toBeLessThan(41);
    expect(await r.runNow()).toBeUndefined();
  });

  if (dialect === 'sqlite') {
    it('prunes and reads alerts through their indexes without table statistics, not by scanning the audit log', async () => {
      await db.run('DELETE FROM audit');
      await put(db, Array.from({ length: 3000 }, (_, i) => ({ id: `p${i}`, time: NOW - i, kind: 'host.alert', subject: `h${i % 100}` })));
      // No statistics were ever gathered: the planner has only the indexes to go by.
      expect(await db.query(`SELECT name FROM sqlite_schema WHERE name = 'sqlite_stat1'`)).toEqual([]);
      const plan = async (sql: string, params: unknown[]) => (await db.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join(' | ');
      // The statements pruneOnce and containerAlerts run.
      expect(await plan(`SELECT time FROM audit WHERE kind = 'host.alert' AND 1 = 1 ORDER BY time DESC LIMIT 1 OFFSET ?`, [10])).toMatch(/^SEARCH audit USING COVERING INDEX audit_kind_time \(kind=\?\)$/);
      expect(await plan(`SELECT time FROM audit WHERE kind = 'host.alert' AND subject = ? ORDER BY time DESC LIMIT 1 OFFSET ?`, ['h1', 10])).toMatch(/^SEARCH audit USING COVERING INDEX audit_kind_subject_time \(kind=\? AND subject=\?\)$/);
      expect(await plan(`SELECT id FROM audit WHERE kind = 'host.alert' AND subject = ? AND time <= ? ORDER BY time LIMIT ?`, ['h1', 1, 10])).toMatch(/^SEARCH audit USING INDEX audit_kind_subject_time \(kind=\? AND subject=\? AND time<\?\)$/);
      expect(await plan(`SELECT time, subject, record FROM audit WHERE kind = 'host.alert' AND subject = ? AND record LIKE ? ESCAPE '!' ORDER BY time DESC LIMIT 100`, ['h1', '%x%'])).toMatch(/^SEARCH audit USING INDEX audit_kind_subject_time \(kind=\? AND subject=\?\)$/);
      expect(await plan('DELETE FROM deliveries WHERE received_at < ?', [1])).toMatch(/USING (COVERING )?INDEX deliveries_received \(received_at<\?\)/);
      // The reconcile records: retention's oldest first, GET /api/v1/sync's newest.
      expect(await plan('SELECT id FROM reconciles WHERE time < ? ORDER BY time LIMIT ?', [1, 10])).toMatch(/^SEARCH reconciles USING INDEX reconciles_time \(time<\?\)$/);
      expect(await plan('SELECT commit_sha, previous_sha, outcome, message, trigger, time FROM reconciles WHERE repo = ? ORDER BY time DESC LIMIT 1', ['r'])).toMatch(/^SCAN reconciles USING INDEX reconciles_time$/);
    });
  }
});

describe('retention settings', () => {
  it('defaults, and refuses values out of bounds or unknown fields at start', () => {
    expect(retentionConfig(undefined)).toEqual({ alertDays: 30, maxAlertsPerHost: 100_000, maxAlerts: 1_000_000, deliveryDays: 7, unusedBundleHours: 24, reconcileDays: 30 });
    expect(retentionConfig({ alertDays: 90 })).toEqual({ alertDays: 90, maxAlertsPerHost: 100_000, maxAlerts: 1_000_000, deliveryDays: 7, unusedBundleHours: 24, reconcileDays: 30 });
    for (const bad of [{ reconcileDays: 0 }, { alertDays: 0 }, { alertDays: 1.5 }, { maxAlerts: 10 }, { maxAlertsPerHost: 5 }, { deliveryDays: '7' }, { deliveryDays: 3 }, { unusedBundleHours: 0 }, { alertsDays: 30 }, { constructor: 5 }, { toString: 5 }, [1], 'x']) {
      expect(() => retentionConfig(bad)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    const dir = mkdtempSync(join(tmpdir(), 'ct-retention-cfg-'));
    writeFileSync(join(dir, 'c.yaml'), 'retention:\n  alertDays: -1\n');
    expect(() => loadConfig({ CT_CONFIG: join(dir, 'c.yaml') })).toThrow(/retention.alertDays must be a whole number from 1 to 3650/);
    writeFileSync(join(dir, 'c.yaml'), 'retention:\n  alertDays: 14\n');
    expect(loadConfig({ CT_CONFIG: join(dir, 'c.yaml') }).retention).toEqual({ alertDays: 14 });
  });
});
