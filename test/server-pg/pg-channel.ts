import { afterAll, beforeAll } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { channelServer, type ChannelServer } from '../server/channel/support.js';

/**
 * A channel server on a PostgreSQL cluster of its own for the suite, and a second connection to
 * the same database (`other`: another replica's transactions, a wedged one). Registers the suite's
 * beforeAll/afterAll; read the fields inside tests.
 */
export function pgChannel(): { readonly pg: Postgres; readonly s: ChannelServer; readonly other: Db } {
  const parts: { pg?: Postgres; s?: ChannelServer; other?: Db } = {};
  beforeAll(async () => {
    parts.pg = await startPostgres();
    parts.s = await channelServer({ databaseUrl: parts.pg.url });
    parts.other = await openDb({ databaseUrl: parts.pg.url });
  }, 60_000);
  afterAll(async () => {
    await parts.s?.close();
    await parts.other?.close();
    await parts.pg?.stop();
  });
  return { get pg() { return parts.pg!; }, get s() { return parts.s!; }, get other() { return parts.other!; } };
}
