import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { expectWideOverview, fillWide } from '../server/overview-wide.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

describe('overview with many environments (PostgreSQL)', () => {
  let pg: Postgres;
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  beforeAll(async () => {
    pg = await startPostgres();
    server = await testServer({ databaseUrl: pg.url });
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    await fillWide(server.ctx.db);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await pg?.stop();
  });

  it('answers 200 with every cell, the same SQL as on SQLite', () => expectWideOverview(server.url, viewer));
});
