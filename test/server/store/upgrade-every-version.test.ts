/**
 * Upgrading from any earlier version: a database left at each earlier schema version (its
 * migrations applied as migrate() applies them), with a row in every table, migrates to today's
 * without an error and without losing a row. A migration cut
 * short (a statement failing, the process killed) leaves nothing of itself: neither its tables nor
 * its version, so the next start applies it whole.
 */
import { describe, expect, it } from '@jest/globals';
import type { Db } from '../../../server/store/db.js';
import { openSqlite } from '../../../server/store/sqlite.js';
import { migrate, MIGRATIONS } from '../../../server/store/migrations.js';

/** The schema as `version` left it. */
async function atVersion(db: Db, version: number): Promise<void> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  for (let v = 1; v <= version; v++) {
    await db.tx(async (t) => {
      await t.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [v, 0]);
      for (const sql of MIGRATIONS[v - 1]) await t.run(sql);
    });
  }
}

const tables = async (db: Db) => (await db.query<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name")).map((r) => r.name);

/** One row in every table, every NOT NULL column given a value of its type (foreign keys off while seeding: each table alone). */
async function seed(db: Db): Promise<Record<string, number>> {
  await db.run('PRAGMA foreign_keys = OFF');
  for (const table of await tables(db)) {
    const cols = await db.query<{ name: string; type: string; notnull: number; dflt_value: unknown }>(`PRAGMA table_info(${table})`);
    const given = cols.filter((c) => c.notnull && c.dflt_value === null);
    const value = (type: string) => (/INT/i.test(type) ? 1 : /TEXT|CHAR/i.test(type) ? '1' : 1);
    await db.run(`INSERT INTO ${table} (${given.map((c) => c.name).join(', ')}) VALUES (${given.map(() => '?').join(', ')})`, given.map((c) => value(c.type)));
  }
  await db.run('PRAGMA foreign_keys = ON');
  return counts(db);
}

async function counts(db: Db): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of await tables(db)) out[table] = Number((await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  return out;
}

describe('upgrading the database from every earlier version (SQLite)', () => {
  it.each(MIGRATIONS.slice(0, -1).map((_m, i) => i + 1))('from version %i: every row kept, every later migration applied once', async (version) => {
    const db = openSqlite(':memory:');
    try {
      await atVersion(db, version);
      const before = await seed(db);
      expect(await migrate(db)).toBe(MIGRATIONS.length - version);
      const after = await counts(db);
      for (const [table, n] of Object.entries(before)) expect([table, after[table]]).toEqual([table, n]);
      expect((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM schema_migrations'))[0].n).toBe(MIGRATIONS.length);
      expect(await migrate(db)).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('a migration cut short leaves nothing of itself, and is applied whole at the next start', async () => {
    const db = openSqlite(':memory:');
    try {
      await migrate(db);
      const next = MIGRATIONS.length + 1;
      // migrate() itself, with the next migration failing at its last statement (the process dying there).
      const cut = [...MIGRATIONS, ['CREATE TABLE upgrade_probe (id TEXT PRIMARY KEY)', 'INSERT INTO upgrade_probe (id) VALUES (1, 2)']];
      const failed = await migrate(db, cut).then((n) => `applied ${n}`, (e: unknown) => String(e));
      expect(failed).toMatch(/values for 1 columns/);
      expect(await db.query("SELECT name FROM sqlite_schema WHERE name = 'upgrade_probe'")).toEqual([]);
      expect(await db.query('SELECT version FROM schema_migrations WHERE version = ?', [next])).toEqual([]);
      // The next start applies it whole.
      expect(await migrate(db, [...MIGRATIONS, ['CREATE TABLE upgrade_probe (id TEXT PRIMARY KEY)', "INSERT INTO upgrade_probe (id) VALUES ('1')"]])).toBe(1);
      expect(await db.query('SELECT id FROM upgrade_probe')).toEqual([{ id: '1' }]);
    } finally {
      await db.close();
    }
  });
});
