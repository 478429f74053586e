import pg from 'pg';
import type { Db, Row } from './db.js';

function toPg(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export async function openPostgres(url: string): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client losing its connection (server restart) must not crash the process; the pool
  // replaces it on the next query.
  pool.on('error', () => undefined);
  const listeners: pg.PoolClient[] = [];

  const make = (exec: (text: string, params: unknown[]) => Promise<pg.QueryResult>): Omit<Db, 'tx' | 'listen' | 'close'> => ({
    dialect: 'postgres',
    async query<T = Row>(sql: string, params: unknown[] = []) {
      return (await exec(toPg(sql), params)).rows as T[];
    },
    async run(sql, params = []) {
      return { changes: (await exec(toPg(sql), params)).rowCount ?? 0 };
    },
    async notify(channel) {
      await exec(`NOTIFY ${JSON.stringify(channel)}`, []);
    },
  });

  const db: Db = {
    ...make((t, p) => pool.query(t, p)),
    async tx<T>(fn: (d: Db) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      const inner: Db = { ...make((t, p) => client.query(t, p)), tx: (f) => f(inner), listen: db.listen, close: async () => {} };
      try {
        await client.query('BEGIN');
        const out = await fn(inner);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    async listen(channel, fn) {
      const client = await pool.connect();
      client.on('error', () => undefined);
      listeners.push(client);
      client.on('notification', (m) => m.channel === channel && fn());
      await client.query(`LISTEN ${JSON.stringify(channel)}`);
      return async () => {
        await client.query(`UNLISTEN ${JSON.stringify(channel)}`).catch(() => undefined);
        client.release();
        listeners.splice(listeners.indexOf(client), 1);
      };
    },
    async close() {
      for (const c of listeners.splice(0)) c.release();
      await pool.end();
    },
  };
  return db;
}
