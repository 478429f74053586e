/** The VSA rows kept in memory on SQLite (one query per image, not per decision) never go stale. */
import { describe, expect, it } from '@jest/globals';
import { openDb } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { VsaStore } from '../../server/promotion/vsa-store.js';

const image = `sha256:${'a'.repeat(64)}`;
const bundle = `sha256:${'b'.repeat(64)}`;
/** The candidate envelopes the store reads for a decision. */
const envelopes = async (store: VsaStore, image: string, bundle: string) => (await store.candidates(image, bundle)).map((r) => r.envelope);
const row = (n: number) => ({ deployment_id: `d-${n}`, environment: `env-${n}`, app: 'web', image_digest: image, bundle_digest: bundle, envelope: `envelope-${n}` });

describe('VSA store', () => {
  it('sees a VSA recorded after a decision read none, also when the read and the record interleave', async () => {
    const db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    const store = new VsaStore(db);
    expect(await envelopes(store, image, bundle)).toEqual([]);
    await store.record(row(1));
    expect(await envelopes(store, image, bundle)).toEqual(['envelope-1']);
    // A read started before a record, finishing after it, is not kept as the image's rows.
    const [during] = await Promise.all([envelopes(store, `sha256:${'c'.repeat(64)}`, bundle), store.record({ ...row(2), image_digest: `sha256:${'c'.repeat(64)}` })]);
    expect(during.length).toBeLessThanOrEqual(1);
    expect(await envelopes(store, `sha256:${'c'.repeat(64)}`, bundle)).toEqual(['envelope-2']);
    // Another bundle of the same image is not answered by this one's VSA.
    expect(await envelopes(store, image, `sha256:${'d'.repeat(64)}`)).toEqual([]);
    await db.close();
  });
});
