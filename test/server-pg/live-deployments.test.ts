import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { expectLiveOnly, fillHistory } from '../server/live-history.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

describe('live deployments without the history\'s evidence (PostgreSQL)', () => {
  let pg: Postgres;
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  let ids: Awaited<ReturnType<typeof fillHistory>>;
  beforeAll(async () => {
    pg = await startPostgres();
    server = await testServer({ databaseUrl: pg.url }, { extend: (ctx) => deployPipeline(ctx) });
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    ids = await fillHistory(server.ctx.db);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await pg?.stop();
  });

  it('answers the newest succeeded row of each cell, the same SQL as on SQLite', () => expectLiveOnly(server.url, server.ctx.db, viewer, ids));
});
