/**
 * The deploy VSAs a decision counts and a host is carried (server/promotion/vsa-store.ts), on
 * SQLite and on PostgreSQL: per environment the newest that verifies, for at most 8 environments.
 * Every successful deploy signs one; the newest 8 of all were, after 8 redeploys to production,
 * all production: the staging VSA that `requireVerifiedIn: [staging]` needs had dropped out and the
 * bundle could no longer be deployed to production.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { CANDIDATES_SQL, MAX_VSAS_PER_IMAGE, VsaStore } from '../../server/promotion/vsa-store.js';
import { signDeployVsa } from '../../src/attest/vsa.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { makeKey, makeStore, type TestKey } from '../verify/fixtures.js';
import { openDialectDb } from '../support/dialect-db.js';

const image = `sha256:${'a'.repeat(64)}`;
const bundle = `sha256:${'b'.repeat(64)}`;
const other = `sha256:${'c'.repeat(64)}`;
const deployer = makeKey();
/** A deployer key rotated in on the server before the trust store lists it. */
const unlisted = makeKey();
const trust = { store: makeStore({ signers: [{ key: deployer, role: 'deployers' }], logs: [] }) } as unknown as TrustMaterial;
const tick = () => new Promise((r) => setTimeout(r, 3));

describe.each(['sqlite', 'postgres'])('deploy VSAs per environment on %s', (dialect) => {
  let store: Awaited<ReturnType<typeof openDialectDb>> | undefined;
  let db: Db;
  beforeAll(async () => {
    store = await openDialectDb(dialect, 'ct-vsa-env-');
    db = store.db;
    await migrate(db);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
  });

  it('counts and carries the newest VSA of each environment that verifies, however often another was redeployed', async () => {
    const store = new VsaStore(db);
    let n = 0;
    const record = async (environment: string, key: TestKey = deployer, bundleDigest = bundle) => {
      await tick();
      const id = `d-${dialect}-${n++}`;
      const envelope = signDeployVsa({ verifierId: 'https://deploy.example', environment, imageDigest: image, bundleDigest, reference: `registry.example/acme/web@${image}`, time: new Date(), deploymentId: id }, key.privateKey).toString('utf8');
      await store.record({ deployment_id: id, environment, app: 'web', image_digest: image, bundle_digest: bundleDigest, envelope });
      return envelope;
    };
    const staging = await record('staging');
    let production = '';
    for (let i = 0; i < MAX_VSAS_PER_IMAGE + 4; i++) production = await record('production');
    // Another bundle of the same image, deployed to qa since: not this bundle's.
    await record('qa', deployer, other);
    expect(await store.verifiedIn(trust, image, bundle)).toEqual({ environments: ['production', 'staging'], envelopes: [production, staging] });

    // The newest production VSA is signed by a key the trust store does not list: the one before
    // still counts, and is the one carried. An environment with none that verifies counts for
    // nothing here, and its newest is carried (after those that verify) for the host's own trust
    // store to judge.
    await record('production', unlisted);
    const canary = await record('canary', unlisted);
    expect(await store.verifiedIn(trust, image, bundle)).toEqual({ environments: ['production', 'staging'], envelopes: [production, staging, canary] });

    // More environments than a host is carried: the 8 with the newest VSAs, and only those count.
    const envs: string[] = [];
    for (let i = 0; i < MAX_VSAS_PER_IMAGE; i++) envs.unshift(await record(`e${i}`));
    const v = await store.verifiedIn(trust, image, bundle);
    expect(v.envelopes).toEqual(envs);
    expect(v.environments).toEqual(Array.from({ length: MAX_VSAS_PER_IMAGE }, (_x, i) => `e${i}`).sort());
    // Environments whose VSAs do not verify here, newer than all of those: they do not push out
    // one that verifies (they take the places left, newest first).
    for (let i = 0; i < MAX_VSAS_PER_IMAGE; i++) await record(`u${i}`, unlisted);
    expect((await store.verifiedIn(trust, image, bundle)).environments).toEqual(v.environments);
    // Without trust material: nothing counts, nothing is carried.
    expect(await store.verifiedIn(undefined, image, bundle)).toEqual({ environments: [], envelopes: [] });
  }, 60_000);

  it('a bundle\'s VSAs are not pushed out by any number of other bundles\' and environments\' newer ones', async () => {
    const store = new VsaStore(db);
    const img = `sha256:${'e'.repeat(64)}`;
    const sign = (environment: string, bundleDigest: string) => signDeployVsa({ verifierId: 'https://deploy.example', environment, imageDigest: img, bundleDigest, reference: `registry.example/acme/web@${img}`, time: new Date(), deploymentId: 'x' }, deployer.privateKey).toString('utf8');
    let at = Date.now() - 1_000_000;
    let k = 0;
    const put = async (environment: string, bundleDigest: string, envelope: string, count: number) => {
      await db.tx(async (t) => {
        for (let i = 0; i < count; i++) {
          await t.run('INSERT INTO vsas (id, deployment_id, environment, app, image_digest, bundle_digest, envelope, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)', [`id-${dialect}-${k}`, `dep-${dialect}-${k++}`, environment, 'web', img, bundleDigest, envelope, at++]);
        }
      });
    };
    const staging = sign('staging', bundle);
    await put('staging', bundle, staging, 1);
    // This bundle redeployed to production 300 times; another bundle of the image (another app)
    // deployed 300 times to production and to 70 other environments, all since.
    const production = sign('production', bundle);
    await put('production', bundle, production, 300);
    await put('production', other, sign('production', other), 300);
    for (let i = 0; i < 70; i++) await put(`x${i}`, other, sign(`x${i}`, other), 1);
    expect(await store.verifiedIn(trust, img, bundle)).toEqual({ environments: ['production', 'staging'], envelopes: [production, staging] });
    // A seek of this bundle's rows in the index made for it, not a sort of the image's history.
    if (dialect === 'sqlite') {
      const plan = (await db.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${CANDIDATES_SQL}`, [img, bundle])).map((r) => r.detail).join(' | ');
      expect(plan).toMatch(/SEARCH vsas USING (COVERING )?INDEX vsas_bundle_newest \(image_digest=\? AND bundle_digest=\?\)/);
    }
  }, 60_000);
});
