import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushCtp } from '../../src/oci/push.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { MT } from '../../src/oci/media-types.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const local = { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true };

describe('push → fetch through a real docker-registry', () => {
  let reg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'ct-oci-'));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([false, true])('rebuilds a byte-identical .ctp (gzip=%s)', async (gzip) => {
    const ctp = join(dir, `in-${gzip}.ctp`);
    const fx = await makeCtp(ctp, { gzip, name: `app${gzip ? 'gz' : ''}` });
    const pushed = await pushCtp(ctp, `${reg.host}/team/app:v${gzip ? 2 : 1}`, local);
    expect(pushed.imageDigest).toBe(fx.imageDigest);
    expect(pushed.bundleDigest).toBe(fx.bundleDigest);
    expect(pushed.referrers).toBe('tag'); // distribution 2.8 has no referrers API
    expect(pushed.compression).toBe(gzip ? 'gzip' : 'none');
    const out = join(dir, `out-${gzip}.ctp`);
    const got = await fetchCtp(`${reg.host}/team/app:v${gzip ? 2 : 1}`, out, local);
    expect(got.bundleDigest).toBe(fx.bundleDigest);
    expect(Buffer.compare(await readFile(out), await readFile(ctp))).toBe(0);
    // and by digest
    const out2 = join(dir, `out2-${gzip}.ctp`);
    await fetchCtp(`${reg.host}/team/app@${fx.imageDigest}`, out2, local);
    expect(Buffer.compare(await readFile(out2), await readFile(ctp))).toBe(0);
  });

  it('replace: false (ct fetch without --force): a file that appears at the output during the fetch is kept, not replaced', async () => {
    const ctp = join(dir, 'race-in.ctp');
    await makeCtp(ctp, { name: 'race' });
    await pushCtp(ctp, `${reg.host}/team/race:1`, local);
    const out = join(dir, 'race-out.ctp');
    // The fetch enters each temporary here before creating it: the output's name is taken then.
    const temporaries = new Set<string>();
    const add = temporaries.add.bind(temporaries);
    temporaries.add = (t: string) => {
      if (!existsSync(out)) writeFileSync(out, 'precious');
      return add(t);
    };
    await expect(fetchCtp(`${reg.host}/team/race:1`, out, { ...local, temporaries, replace: false })).rejects.toMatchObject({ code: 'IO_ERROR', message: `${out}: already exists (use --force to replace it)` });
    expect(await readFile(out, 'utf8')).toBe('precious');
    expect((await readdir(dir)).filter((n) => n.startsWith('.race-out.ctp.'))).toEqual([]);
  });

  it('stores a gzip .ctp not written by ct whole, and still rebuilds it exactly', async () => {
    const { gzipSync, gunzipSync } = await import('node:zlib');
    const ctp = join(dir, 'pack9.ctp');
    await makeCtp(ctp, { gzip: true, name: 'level9' });
    const foreign = join(dir, 'foreign.ctp');
    await writeFile(foreign, gzipSync(gunzipSync(await readFile(ctp)), { level: 9 }));
    expect((await pushCtp(foreign, `${reg.host}/team/foreign:1`, local)).compression).toBe('raw');
    const out = join(dir, 'foreign-out.ctp');
    await fetchCtp(`${reg.host}/team/foreign:1`, out, local);
    expect(Buffer.compare(await readFile(out), await readFile(foreign))).toBe(0);
  });

  it('attaches attestations as referrers with the right artifact types (tag fallback)', async () => {
    const ctp = join(dir, 'ref.ctp');
    const fx = await makeCtp(ctp, { name: 'refs' });
    const pushed = await pushCtp(ctp, `${reg.host}/team/refs:1`, local);
    expect(pushed.artifacts.map((a) => [a.path, a.artifactType]).sort()).toEqual([
      ['attestations/build.sigstore.json', MT.sigstoreBundle],
      ['attestations/bundle.json', MT.vcsBundle],
    ]);
    const client = await RegistryClient.open(parseReference(`${reg.host}/team/refs:1`), local);
    try {
      const all = await client.referrers(fx.imageDigest);
      expect(all.via).toBe('tag');
      expect(all.descriptors.map((d) => d.artifactType).sort()).toEqual([MT.ctpRecipe, MT.vcsBundle, MT.sigstoreBundle].sort());
      const sig = await client.referrers(fx.imageDigest, MT.sigstoreBundle);
      expect(sig.descriptors).toHaveLength(1);
      const m = JSON.parse((await client.getManifest(sig.descriptors[0].digest)).bytes.toString('utf8'));
      expect(m.subject.digest).toBe(fx.imageDigest);
      const layer = await client.pullBlobBytes(m.layers[0]);
      expect(JSON.parse(layer.toString('utf8')).note).toBe('fixture');
      expect((await client.listTags()).sort()).toEqual(['1', fx.imageDigest.replace(':', '-')].sort());
    } finally {
      await client.close();
    }
    // pushing the same .ctp again adds no duplicate referrers
    await pushCtp(ctp, `${reg.host}/team/refs:1`, local);
    const again = await RegistryClient.open(parseReference(`${reg.host}/team/refs:1`), local);
    try {
      expect((await again.referrers(fx.imageDigest)).descriptors).toHaveLength(3);
    } finally {
      await again.close();
    }
  });

  it('second push of the same image skips existing blobs', async () => {
    const ctp = join(dir, 'skip.ctp');
    await makeCtp(ctp, { name: 'skip' });
    const first = await pushCtp(ctp, `${reg.host}/team/skip:1`, local);
    const second = await pushCtp(ctp, `${reg.host}/team/skip:2`, local);
    expect(first.uploadedBytes).toBeGreaterThan(0);
    expect(second.uploadedBytes).toBe(0);
    expect(second.skippedBlobs).toBeGreaterThan(0);
  });

  it('fetch of a tag that does not exist reports REGISTRY_NOT_FOUND', async () => {
    await expect(fetchCtp(`${reg.host}/team/none:1`, join(dir, 'x.ctp'), local)).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });
  });

  it('big blobs go up in PATCH chunks and come back identical', async () => {
    const { randomBytes } = await import('node:crypto');
    const ctp = join(dir, 'big.ctp');
    await makeCtp(ctp, { name: 'big', layers: [{ 'data/blob.bin': randomBytes(300 * 1024) }] });
    await pushCtp(ctp, `${reg.host}/team/big:1`, { ...local, monolithicMax: 64 * 1024, chunkSize: 100 * 1024 });
    const out = join(dir, 'big-out.ctp');
    await fetchCtp(`${reg.host}/team/big:1`, out, local);
    expect(Buffer.compare(await readFile(out), await readFile(ctp))).toBe(0);
  });
});
