/**
 * A deployment's monitor alerts (server/routes/container-alerts.ts, the Evidence page), on SQLite and
 * on PostgreSQL: only the named container's (not another whose id it begins, nor one a LIKE wildcard
 * would match), only from the hosts the deployment targets, newest first, at most 100, and the
 * row's time and host, not the record's.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { containerAlerts } from '../../server/routes/container-alerts.js';
import { openDialectDb } from '../support/dialect-db.js';

async function fill(db: Db): Promise<void> {
  await migrate(db);
  const host = (id: string, labels: Record<string, string>) =>
    db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [id, id, 'k', JSON.stringify(labels), '{}', 0]);
  await host('prod-1', { env: 'production' });
  await host('prod-2', { env: 'production', zone: 'b' });
  await host('staging-1', { env: 'staging' });
  let n = 0;
  const alert = (subject: string, container: string, detail: string, extra: Record<string, unknown> = {}) =>
    db.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [`a${++n}`, 1_000 + n, 'host.alert', subject, JSON.stringify({ type: 'event', ...extra, event: { kind: 'monitor', container, detail, time: 'x' } })]);
  await alert('prod-1', 'ct-production-web', 'one');
  await alert('prod-2', 'ct-production-web', 'two', { time: 'forged', host: 'forged' });
  await alert('prod-1', 'ct-production-web2', 'prefix');
  await alert('prod-1', 'ct-production-wex', 'wildcard');
  await alert('staging-1', 'ct-production-web', 'other environment');
  await db.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', ['x1', 9_999, 'deploy', 'prod-1', JSON.stringify({ event: { container: 'ct-production-web' } })]);
  for (let i = 0; i < 120; i++) await alert('prod-2', 'ct-production-web', `bulk ${i}`);
}

describe.each(['sqlite', 'postgres'])('container alerts on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openDialectDb>> | undefined;
  let db: Db;
  beforeAll(async () => {
    store = await openDialectDb(kind, 'ct-alerts-');
    db = store.db;
    await fill(db);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
  });

  it('selects the container\'s own alerts from the deployment\'s hosts, newest 100 first', async () => {
    const all = (await containerAlerts(db, 'production', {}, 'ct-production-web')) as { host: string; time: string; event: { detail: string } }[];
    expect(all).toHaveLength(100);
    expect(all[0].event.detail).toBe('bulk 119');
    expect(all.map((a) => a.time)).toEqual([...all.map((a) => a.time)].sort().reverse());
    const few = (await containerAlerts(db, 'production', { zone: 'b' }, 'ct-production-web')) as { host: string; event: { detail: string } }[];
    expect(new Set(few.map((a) => a.host))).toEqual(new Set(['prod-2']));
    // Fewer alerts than the window: none of the look-alikes, another environment's host or another kind.
    await db.run(`DELETE FROM audit WHERE record LIKE '%bulk%'`);
    const rest = (await containerAlerts(db, 'production', {}, 'ct-production-web')) as { host: string; time: string; event: { detail: string } }[];
    expect(rest.map((a) => [a.host, a.event.detail])).toEqual([['prod-2', 'two'], ['prod-1', 'one']]);
    expect(rest[0].time).toBe(new Date(1_002).toISOString());
    expect(await containerAlerts(db, 'staging', {}, 'ct-production-web')).toHaveLength(1);
    expect(await containerAlerts(db, 'production', {}, 'ct-production-we_')).toEqual([]);
    expect(await containerAlerts(db, 'nowhere', {}, 'ct-production-web')).toEqual([]);
  });
});
