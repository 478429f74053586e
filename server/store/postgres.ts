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
      // A checked-out client has no listener for 'error' (the pool listens on idle ones only): a
      // connection lost between two of this transaction's queries (the server restarting, a
      // session ended by the server) was an unhandled 'error' event, and the process exited. The
      // transaction's next query fails instead, and the client is not given back to the pool.
      let broken: Error | undefined;
      const onError = (e: Error) => void (broken = e);
      client.on('error', onError);
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
        client.off('error', onError);
        client.release(broken ?? undefined);
      }
    },
    async listen(channel, fn) {
      // A dedicated connection; when it drops (server restart, network), a new one LISTENs again
      // after a short delay, and `fn` runs once so that nothing notified meanwhile is missed.
      let stopped = false;
      let current: pg.PoolClient | undefined;
      const attach = async (): Promise<void> => {
        if (stopped) return;
        try {
          const client = await pool.connect();
          current = client;
          listeners.push(client);
          const lost = () => {
            if (current !== client) return;
            current = undefined;
            listeners.splice(listeners.indexOf(client), 1);
            client.release(true);
            if (!stopped) setTimeout(() => void attach().then(fn), 500).unref();
          };
          client.on('error', lost);
          client.on('end', lost);
          client.on('notification', (m) => m.channel === channel && fn());
          await client.query(`LISTEN ${JSON.stringify(channel)}`);
        } catch {
          if (!stopped) setTimeout(() => void attach().then(fn), 1000).unref();
        }
      };
      await attach();
      return async () => {
        stopped = true;
        const client = current;
        current = undefined;
        if (!client) return;
        await client.query(`UNLISTEN ${JSON.stringify(channel)}`).catch(() => undefined);
        listeners.splice(listeners.indexOf(client), 1);
        client.release();
      };
    },
    async close() {
      for (const c of listeners.splice(0)) c.release();
      await pool.end();
    },
  };
  return db;
}
