/**
 * The test PostgreSQL picks a free port and then binds it: a parallel test that takes the port in
 * between must cost a retry on another port, not the suite a failure.
 */
import { describe, expect, it } from '@jest/globals';
import { createServer } from 'node:net';
import pg from 'pg';
import { startPostgres } from '../support/postgres.js';

describe('startPostgres', () => {
  it('starts on another port when its first one is taken', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const taken = (holder.address() as { port: number }).port;
    try {
      const db = await startPostgres({ firstPort: taken });
      try {
        expect(new URL(db.url).port).not.toBe(String(taken));
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        await client.end();
      } finally {
        await db.stop();
      }
    } finally {
      holder.close();
    }
  }, 60_000);
});
