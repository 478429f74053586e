/**
 * PostgreSQL: a database of the previous version upgraded to `host_generations` keeps every host's
 * generation (see test/server/store/host-generations-upgrade.ts; the SQLite run is there too).
 */
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { openDb } from '../../server/store/db.js';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { checkGenerationUpgrade } from '../server/store/host-generations-upgrade.js';

describe('host generations upgrade on PostgreSQL', () => {
  let pg: Postgres;
  beforeAll(async () => void (pg = await startPostgres()), 60_000);
  afterAll(async () => pg?.stop());

  it('keeps every host\'s generation, raises, lifts and removes it as before', async () => {
    const db = await openDb({ databaseUrl: pg.url });
    try {
      await checkGenerationUpgrade(db);
    } finally {
      await db.close();
    }
  });
});
