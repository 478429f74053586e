/**
 * The deploy VSAs a decision considers and a host is sent (server/promotion/vsa-store.ts): the
 * newest of each environment, on SQLite and on PostgreSQL. Every successful deploy signs one; the
 * newest 8 of all were, after 8 redeploys to production, all production: the staging VSA that
 * `requireVerifiedIn: [staging]` needs had dropped out and the bundle could no longer be deployed
 * to production.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { MAX_VSAS_PER_IMAGE, VsaStore } from '../../server/promotion/vsa-store.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

const image = `sha256:${'a'.repeat(64)}`;
const bundle = `sha256:${'b'.repeat(64)}`;
const other = `sha256:${'c'.repeat(64)}`;
const tick = () => new Promise((r) => setTimeout(r, 3));

describe.each(['sqlite', 'postgres'])('deploy VSAs per environment on %s', (dialect) => {
  let pg: Postgres | undefined;
  let db: Db;
  beforeAll(async () => {
    if (dialect === 'postgres') {
      pg = await startPostgres();
      db = await openDb({ databaseUrl: pg.url });
    } else {
      db = await openDb({ sqlitePath: join(mkdtempSync(join(tmpdir(), 'ct-vsa-env-')), 'ct.db') });
    }
    await migrate(db);
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await pg?.stop();
  });

  it('keeps the newest VSA of each environment however often another was redeployed, newest first, bounded', async () => {
    const store = new VsaStore(db);
    let n = 0;
    const record = async (environment: string, bundleDigest = bundle) => {
      await tick();
      const id = `d-${dialect}-${n++}`;
      await store.record({ deployment_id: id, environment, app: 'web', image_digest: image, bundle_digest: bundleDigest, envelope: `${environment}-${id}` });
      return `${environment}-${id}`;
    };
    const staging = await record('staging');
    let production = '';
    for (let i = 0; i < MAX_VSAS_PER_IMAGE + 4; i++) production = await record('production');
    // Another bundle of the same image, deployed to qa since: not this bundle's.
    await record('qa', other);
    expect(await store.envelopes(image, bundle)).toEqual([production, staging]);
    expect(await store.envelopes(image, other)).toHaveLength(1);

    // More environments than a host is sent: the newest 8 environments.
    const envs: string[] = [];
    for (let i = 0; i < MAX_VSAS_PER_IMAGE + 2; i++) envs.unshift(await record(`e${i}`));
    expect(await store.envelopes(image, bundle)).toEqual(envs.slice(0, MAX_VSAS_PER_IMAGE));
  }, 60_000);
});
