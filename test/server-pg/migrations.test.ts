/**
 * Migrations on one PostgreSQL raced by several replicas starting at once: every migration is
 * applied by exactly one of them, none fails, and the schema is complete afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate, MIGRATIONS } from '../../server/store/migrations.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

describe('migrations raced by replicas on PostgreSQL', () => {
  let pg: Postgres;
  beforeAll(async () => void (pg = await startPostgres()), 60_000);
  afterAll(async () => pg?.stop());

  it.each([1, 2, 3])('applies each migration exactly once with four replicas starting together (round %i)', async (round) => {
    const admin = await openDb({ databaseUrl: pg.url });
    await admin.run(`CREATE DATABASE race${round}`);
    await admin.close();
    const url = pg.url.replace(/\/ct$/, `/race${round}`);
    const dbs: Db[] = await Promise.all([0, 1, 2, 3].map(() => openDb({ databaseUrl: url })));
    try {
      const applied = await Promise.all(dbs.map((d) => migrate(d)));
      expect(applied.reduce((a, b) => a + b, 0)).toBe(MIGRATIONS.length);
      const versions = await dbs[0].query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(versions.map((v) => Number(v.version))).toEqual(MIGRATIONS.map((_m, i) => i + 1));
      // The last migration's columns exist: the queue can use them.
      await dbs[1].query('SELECT affinity FROM jobs LIMIT 1');
      await dbs[2].query('SELECT replica FROM hosts LIMIT 1');
      expect(await migrate(dbs[3])).toBe(0);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
  });
});
