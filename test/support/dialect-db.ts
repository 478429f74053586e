/**
 * A store of one dialect for tests that run on both (`describe.each(['sqlite', 'postgres'])`):
 * SQLite in a temporary directory, or PostgreSQL in a cluster of its own (test/support/postgres.ts).
 * Not migrated: some tests build an older schema first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/store/db.js';
import { startPostgres } from './postgres.js';

export async function openDialectDb(dialect: string, prefix: string): Promise<{ db: Db; close(): Promise<void> }> {
  if (dialect === 'postgres') {
    const pg = await startPostgres();
    const db = await openDb({ databaseUrl: pg.url }).catch(async (e: unknown) => {
      await pg.stop();
      throw e;
    });
    return { db, close: async () => { await db.close(); await pg.stop(); } };
  }
  const db = await openDb({ sqlitePath: join(mkdtempSync(join(tmpdir(), prefix)), 'ct.db') });
  return { db, close: () => db.close() };
}
