/**
 * Retention (server/retention/prune.ts), on SQLite and on PostgreSQL: host alerts older than their
 * days or beyond the newest maxAlerts are deleted, in chunks, and nothing else of the audit log is;
 * webhook delivery ids go after their days; the settings are checked at start; the queries the
 * pruner and the Evidence page run use the indexes made for them (a seek, not a scan of the log).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { loadConfig } from '../../server/config.js';
import { pruneOnce, retentionConfig, RETENTION_DEFAULTS, startRetention } from '../../server/retention/prune.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 6);

async function put(db: Db, rows: { id: string; time: number; kind: string; subject?: string }[]): Promise<void> {
  await db.tx(async (t) => {
    for (const r of rows) await t.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [r.id, r.time, r.kind, r.subject ?? 'h1', '{}']);
  });
}
const ids = async (db: Db, kind: string) => (await db.query<{ id: string }>('SELECT id FROM audit WHERE kind = ? ORDER BY time, id', [kind])).map((r) => r.id);

describe.each(['sqlite', 'postgres'])('retention on %s', (dialect) => {
  let pg: Postgres | undefined;
  let db: Db;
  beforeAll(async () => {
    if (dialect === 'postgres') {
      pg = await startPostgres();
      db = await openDb({ databaseUrl: pg.url });
    } else {
      db = await openDb({ sqlitePath: join(mkdtempSync(join(tmpdir(), 'ct-retention-')), 'ct.db') });
    }
    await migrate(db);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await pg?.stop();
  });

  it('deletes alerts past their days and beyond the count, in chunks, and keeps every other record', async () => {
    await db.run('DELETE FROM audit');
    const rows = [];
    // 25 alerts 40 days old, 10 from 29 days ago to now; other kinds as old as the oldest alert.
    for (let i = 0; i < 25; i++) rows.push({ id: `old-${String(i).padStart(2, '0')}`, time: NOW - 40 * DAY + i, kind: 'host.alert' });
    for (let i = 0; i < 10; i++) rows.push({ id: `new-${i}`, time: NOW - (29 - i * 3) * DAY, kind: 'host.alert' });
    rows.push({ id: 'deploy-old', time: NOW - 400 * DAY, kind: 'deploy' }, { id: 'login-old', time: NOW - 400 * DAY, kind: 'ui.login' });
    await put(db, rows);
    // Chunks of 4: 25 old rows take 7 statements; the count is what was deleted.
    const first = await pruneOnce(db, RETENTION_DEFAULTS, NOW, 4);
    expect(first.alerts).toBe(25);
    expect(await ids(db, 'host.alert')).toEqual(Array.from({ length: 10 }, (_, i) => `new-${i}`));
    expect(await ids(db, 'deploy')).toEqual(['deploy-old']);
    expect(await ids(db, 'ui.login')).toEqual(['login-old']);
    // The count: only the newest maxAlerts stay, whatever their age.
    expect((await pruneOnce(db, { ...RETENTION_DEFAULTS, maxAlerts: 3 }, NOW, 4)).alerts).toBe(7);
    expect(await ids(db, 'host.alert')).toEqual(['new-7', 'new-8', 'new-9']);
    // Nothing left to delete: a second pass deletes nothing.
    expect(await pruneOnce(db, { ...RETENTION_DEFAULTS, maxAlerts: 3 }, NOW, 4)).toEqual({ alerts: 0, deliveries: 0 });
    expect(await ids(db, 'host.alert')).toHaveLength(3);
  });

  it('forgets webhook deliveries after their days: the same id is then taken as new', async () => {
    await db.run('DELETE FROM deliveries');
    for (const [id, age] of [['d-old', 8], ['d-edge', 6], ['d-new', 0]] as const) {
      await db.run('INSERT INTO deliveries (source, id, event, received_at) VALUES (?, ?, ?, ?)', ['github', id, 'push', NOW - age * DAY]);
    }
    expect((await pruneOnce(db, RETENTION_DEFAULTS, NOW)).deliveries).toBe(1);
    expect((await db.query<{ id: string }>('SELECT id FROM deliveries ORDER BY id')).map((r) => r.id)).toEqual(['d-edge', 'd-new']);
    expect((await pruneOnce(db, { ...RETENTION_DEFAULTS, deliveryDays: 1 }, NOW)).deliveries).toBe(1);
  });

  it('runs on its timer, one pass at a time, and stops waiting for a pass in progress', async () => {
    await db.run('DELETE FROM audit');
    await put(db, [{ id: 'ancient', time: 0, kind: 'host.alert' }, { id: 'fresh', time: Date.now(), kind: 'host.alert' }]);
    const r = startRetention(db, RETENTION_DEFAULTS, pino({ level: 'silent' }), { firstAfterMs: 10, everyMs: 60_000 });
    const [a, b] = [r.runNow(), r.runNow()];
    expect(a).toBe(b);
    expect(await a).toEqual({ alerts: 1, deliveries: 0 });
    await r.stop();
    expect(await r.runNow()).toBeUndefined();
    expect(await ids(db, 'host.alert')).toEqual(['fresh']);
  });

  if (dialect === 'sqlite') {
    it('prunes and reads alerts through their indexes, not by scanning the audit log', async () => {
      // A log of 3,000 alerts from 100 hosts; a pass gathers the statistics the planner needs.
      await db.run('DELETE FROM audit');
      await put(db, Array.from({ length: 3000 }, (_, i) => ({ id: `p${i}`, time: NOW - i, kind: 'host.alert', subject: `h${i % 100}` })));
      await pruneOnce(db, RETENTION_DEFAULTS, NOW);
      const plan = async (sql: string, params: unknown[]) => (await db.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join(' | ');
      expect(await plan(`SELECT time FROM audit WHERE kind = 'host.alert' ORDER BY time DESC LIMIT 1 OFFSET ?`, [10])).toMatch(/USING COVERING INDEX audit_kind_time/);
      expect(await plan(`SELECT id FROM audit WHERE kind = 'host.alert' AND time < ? ORDER BY time LIMIT ?`, [1, 10])).toMatch(/USING INDEX audit_kind_time \(kind=\? AND time<\?\)/);
      expect(await plan(`SELECT time, subject, record FROM audit WHERE kind = 'host.alert' AND subject IN (?, ?) AND record LIKE ? ESCAPE '!' ORDER BY time DESC LIMIT 100`, ['a', 'b', '%x%'])).toMatch(/USING INDEX audit_kind_subject_time \(kind=\? AND subject=\?\)/);
      expect(await ids(db, 'host.alert')).toHaveLength(3000);
      expect(await plan('DELETE FROM deliveries WHERE received_at < ?', [1])).toMatch(/USING (COVERING )?INDEX deliveries_received \(received_at<\?\)/);
    });
  }
});

describe('retention settings', () => {
  it('defaults, and refuses values out of bounds or unknown fields at start', () => {
    expect(retentionConfig(undefined)).toEqual({ alertDays: 30, maxAlerts: 1_000_000, deliveryDays: 7 });
    expect(retentionConfig({ alertDays: 90 })).toEqual({ alertDays: 90, maxAlerts: 1_000_000, deliveryDays: 7 });
    for (const bad of [{ alertDays: 0 }, { alertDays: 1.5 }, { maxAlerts: 10 }, { deliveryDays: '7' }, { alertsDays: 30 }, [1], 'x']) {
      expect(() => retentionConfig(bad)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    const dir = mkdtempSync(join(tmpdir(), 'ct-retention-cfg-'));
    writeFileSync(join(dir, 'c.yaml'), 'retention:\n  alertDays: -1\n');
    expect(() => loadConfig({ CT_CONFIG: join(dir, 'c.yaml') })).toThrow(/retention.alertDays must be a whole number from 1 to 3650/);
    writeFileSync(join(dir, 'c.yaml'), 'retention:\n  alertDays: 14\n');
    expect(loadConfig({ CT_CONFIG: join(dir, 'c.yaml') }).retention).toEqual({ alertDays: 14 });
  });
});
