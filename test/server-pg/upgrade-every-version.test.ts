/**
 * Upgrading a PostgreSQL database from any earlier schema version (its migrations applied by
 * migrate() itself), with a row in every table: today's migrations apply without an error, each
 * once, and no row is lost. The SQLite variant is test/server/store/upgrade-every-version.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate, MIGRATIONS } from '../../server/store/migrations.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

const tables = async (db: Db) =>
  (await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name")).map((r) => r.table_name);

async function counts(db: Db): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of await tables(db)) out[table] = Number((await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  return out;
}

/** One row in every table, every NOT NULL column without a default given a value of its type (foreign keys not enforced while seeding: each table alone). */
async function seed(db: Db): Promise<Record<string, number>> {
  await db.tx(async (t) => {
    await t.run('SET LOCAL session_replication_role = replica');
    for (const table of await tables(t)) {
      const cols = await t.query<{ column_name: string; data_type: string }>(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ? AND is_nullable = 'NO' AND column_default IS NULL ORDER BY ordinal_position", [table],
      );
      const value = (type: string) => (/int|numeric|double|real/i.test(type) ? 1 : /bool/i.test(type) ? true : /bytea/i.test(type) ? Buffer.from('1') : /json/i.test(type) ? '{}' : '1');
      await t.run(`INSERT INTO ${table} (${cols.map((c) => c.column_name).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, cols.map((c) => value(c.data_type)));
    }
  });
  return counts(db);
}

describe('upgrading the database from every earlier version (PostgreSQL)', () => {
  let pg: Postgres;
  beforeAll(async () => void (pg = await startPostgres()), 60_000);
  afterAll(async () => pg?.stop());

  it('from each earlier version: every row kept, every later migration applied once', async () => {
    const admin = await openDb({ databaseUrl: pg.url });
    try {
      for (let version = 1; version < MIGRATIONS.length; version++) {
        await admin.run(`CREATE DATABASE upgrade${version}`);
        const db = await openDb({ databaseUrl: pg.url.replace(/\/ct$/, `/upgrade${version}`) });
        try {
          expect([version, await migrate(db, MIGRATIONS.slice(0, version))]).toEqual([version, version]);
          const before = await seed(db);
          expect(Object.entries(before).filter(([, n]) => n !== 1)).toEqual([]);
          expect([version, await migrate(db)]).toEqual([version, MIGRATIONS.length - version]);
          const after = await counts(db);
          for (const [table, n] of Object.entries(before)) expect([version, table, after[table]]).toEqual([version, table, n]);
          expect(Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM schema_migrations'))[0].n)).toBe(MIGRATIONS.length);
          expect(await migrate(db)).toBe(0);
        } finally {
          await db.close();
        }
      }
    } finally {
      await admin.close();
    }
  }, 240_000);
});
