// Deploy VSAs in the `sha256-<hex>` tag index of a real docker-registry (no referrers API): a new
// VSA replaces the older ones of its environment and key, at most 32 stay, what `ct push` attached
// stays untouched (and `ct fetch` keeps working), fetchVsas reads the newest first, and an index
// past the read bound is a typed error. Then a registry WITH the referrers API (a stand-in: the
// Debian registry has none): the superseded VSA manifest is deleted, a refused delete is no error.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { EMPTY_DESCRIPTOR, EMPTY_JSON, MT, type Descriptor } from '../../src/oci/media-types.js';
import { pushCtp } from '../../src/oci/push.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { attachVsa, DSSE_MEDIA_TYPE, fetchVsas, MAX_CANDIDATE_MANIFEST } from '../../src/oci/vsa-referrer.js';
import { ANNOTATION_VSA_ENVIRONMENT, MAX_VSAS, vsaAnnotations } from '../../src/oci/vsa-index.js';
import { isOwnDeployVsa, signDeployVsa, VSA_ARTIFACT_TYPE } from '../../src/attest/vsa.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { sha256Digest } from '../../src/core/digest.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const local = { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true };
const KEY = 'a1'.repeat(32);
const T0 = Date.UTC(2026, 0, 1);
/** The n-th deploy: an envelope stand-in (attachVsa publishes bytes; verifying is its readers' job). */
const envelope = (env: string, n: number) => Buffer.from(JSON.stringify({ env, n }));
const labels = (env: string, n: number, verifier = KEY) => ({ environment: env, verifier, created: new Date(T0 + n * 60_000) });

async function tagIndex(reg: TestRegistry, repo: string, imageDigest: string): Promise<{ bytes: Buffer; manifests: Descriptor[] }> {
  const c = await RegistryClient.open(parseReference(`${reg.host}/${repo}`), local);
  try {
    const { bytes } = await c.getManifest(RegistryClient.fallbackTag(imageDigest), [MT.imageIndex]);
    return { bytes, manifests: JSON.parse(bytes.toString('utf8')).manifests };
  } finally {
    await c.close();
  }
}

describe('deploy VSAs in the tag index (docker-registry, no referrers API)', () => {
  let reg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'ct-vsa-referrers-'));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A pushed .ctp (attestations and recipe in the tag index): its reference by digest. */
  async function pushed(name: string): Promise<{ ref: string; ctp: string; imageDigest: string; pushedReferrers: Descriptor[] }> {
    const ctp = join(dir, `${name}.ctp`);
    const fx = await makeCtp(ctp, { name, layers: [{ name: `${name}\n` }] });
    const r = await pushCtp(ctp, `${reg.host}/team/${name}:1`, local);
    expect(r.referrers).toBe('tag');
    const pushedReferrers = (await tagIndex(reg, `team/${name}`, fx.imageDigest)).manifests;
    expect(pushedReferrers.length).toBeGreaterThanOrEqual(3);
    return { ref: `${reg.host}/team/${name}@${fx.imageDigest}`, ctp, imageDigest: fx.imageDigest, pushedReferrers };
  }

  it('many deploys to 2 environments: the index keeps the newest VSA of each, its size stays constant, ct push\'s referrers stay and ct fetch works, fetchVsas reads the newest first', async () => {
    const app = await pushed('redeployed');
    const sizes: number[] = [];
    const digests: Record<string, string> = {};
    for (let n = 1; n <= 12; n++) {
      const env = n % 2 ? 'staging' : 'production';
      const r = await attachVsa(app.ref, envelope(env, n), labels(env, n), local);
      expect(r.via).toBe('tag');
      digests[`${env}${n}`] = r.digest;
      sizes.push((await tagIndex(reg, 'team/redeployed', app.imageDigest)).bytes.length);
    }
    const { manifests } = await tagIndex(reg, 'team/redeployed', app.imageDigest);
    const vsas = manifests.filter((d) => d.artifactType === VSA_ARTIFACT_TYPE);
    expect(vsas.map((d) => d.digest).sort()).toEqual([digests.staging11, digests.production12].sort());
    expect(vsas.find((d) => d.digest === digests.production12)?.annotations).toMatchObject({
      [ANNOTATION_VSA_ENVIRONMENT]: 'production', 'dev.cerro-torre.vsa.verifier': KEY, 'org.opencontainers.image.created': '2026-01-01T00:12:00.000Z',
    });
    // Bounded: from the second deploy of each environment on, the index does not grow.
    expect(new Set(sizes.slice(1)).size).toBe(1);
    expect(manifests.filter((d) => d.artifactType !== VSA_ARTIFACT_TYPE)).toEqual(app.pushedReferrers);
    // The artifact manifest carries the same annotations as its descriptor.
    const c = await RegistryClient.open(parseReference(app.ref), local);
    try {
      expect((await c.getImageManifest(digests.staging11)).annotations).toEqual(vsas.find((d) => d.digest === digests.staging11)?.annotations);
    } finally {
      await c.close();
    }
    const out = join(dir, 'redeployed-out.ctp');
    await fetchCtp(app.ref, out, local);
    expect(Buffer.compare(await readFile(out), await readFile(app.ctp))).toBe(0);
    expect((await fetchVsas(app.ref, local)).map((b) => b.toString('utf8'))).toEqual([envelope('production', 12), envelope('staging', 11)].map(String));
  });

  it('another deployer key\'s VSA of the same environment is not replaced; past 32 environments the index keeps the 32 newest VSAs, fetchVsas the same, newest first', async () => {
    const app = await pushed('many-envs');
    await attachVsa(app.ref, envelope('staging', 0), labels('staging', 0, 'b2'.repeat(32)), local);
    await attachVsa(app.ref, envelope('staging', 1), labels('staging', 1), local);
    let vsas = (await tagIndex(reg, 'team/many-envs', app.imageDigest)).manifests.filter((d) => d.artifactType === VSA_ARTIFACT_TYPE);
    expect(vsas).toHaveLength(2);
    for (let n = 2; n <= 40; n++) await attachVsa(app.ref, envelope(`env-${n}`, n), labels(`env-${n}`, n), local);
    const { manifests } = await tagIndex(reg, 'team/many-envs', app.imageDigest);
    vsas = manifests.filter((d) => d.artifactType === VSA_ARTIFACT_TYPE);
    expect(vsas).toHaveLength(MAX_VSAS);
    expect(vsas.map((d) => d.annotations?.[ANNOTATION_VSA_ENVIRONMENT]).sort()).toEqual(Array.from({ length: 32 }, (_, i) => `env-${i + 9}`).sort());
    expect(manifests.filter((d) => d.artifactType !== VSA_ARTIFACT_TYPE)).toEqual(app.pushedReferrers);
    const read = (await fetchVsas(app.ref, local)).map((b) => JSON.parse(b.toString('utf8')).n);
    expect(read).toEqual(Array.from({ length: 32 }, (_, i) => 40 - i));
  }, 60_000);

  it('an older deployment\'s VSA published after a newer one: the newer stays listed, the older is pushed but not listed', async () => {
    const app = await pushed('out-of-order');
    const newer = await attachVsa(app.ref, envelope('staging', 5), labels('staging', 5), local);
    const older = await attachVsa(app.ref, envelope('staging', 3), labels('staging', 3), local);
    expect(newer.superseded).toBeUndefined();
    expect(older).toMatchObject({ via: 'tag', superseded: true });
    const vsas = (await tagIndex(reg, 'team/out-of-order', app.imageDigest)).manifests.filter((d) => d.artifactType === VSA_ARTIFACT_TYPE);
    expect(vsas.map((d) => d.digest)).toEqual([newer.digest]);
    expect((await fetchVsas(app.ref, local)).map(String)).toEqual([String(envelope('staging', 5))]);
  });

  /** Writes the tag index by hand: `extra` real manifests (distribution checks they exist) after what ct push put there. */
  async function seedIndex(app: { ref: string; imageDigest: string; pushedReferrers: Descriptor[] }, extra: { artifactType?: string; n: number; annotations?: Record<string, string> }[], repeat = 1): Promise<Descriptor[]> {
    const c = await RegistryClient.open(parseReference(app.ref), local);
    try {
      await c.pushBlob(EMPTY_DESCRIPTOR, { bytes: EMPTY_JSON });
      const added: Descriptor[] = [];
      for (const e of extra) {
        const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageManifest, ...(e.artifactType ? { artifactType: e.artifactType } : {}), config: EMPTY_DESCRIPTOR, layers: [], annotations: { n: String(e.n) } }));
        await c.putManifest(sha256Digest(m), m, MT.imageManifest);
        added.push({ mediaType: MT.imageManifest, digest: sha256Digest(m), size: m.length, ...(e.artifactType ? { artifactType: e.artifactType } : {}), ...(e.annotations ? { annotations: e.annotations } : {}) });
      }
      const manifests = [...app.pushedReferrers, ...Array.from({ length: repeat }, () => added).flat()];
      await c.putManifest(RegistryClient.fallbackTag(app.imageDigest), Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageIndex, manifests })), MT.imageIndex);
      return added;
    } finally {
      await c.close();
    }
  }

  it('an index over-full from before (50 VSAs without annotations) among foreign descriptors shrinks to 32 VSAs on the next publish; no foreign descriptor is dropped', async () => {
    const app = await pushed('legacy');
    const foreign = [
      ...Array.from({ length: 20 }, (_, n) => ({ artifactType: 'application/vnd.example.sbom+json', n })),
      { n: 100 }, // no artifactType at all
      // An artifact that only looks like a VSA by its annotations is not one.
      { artifactType: 'application/vnd.example.other+json', n: 101, annotations: { [ANNOTATION_VSA_ENVIRONMENT]: 'staging', 'dev.cerro-torre.vsa.verifier': KEY } },
    ];
    const legacy = Array.from({ length: 50 }, (_, i) => ({ artifactType: VSA_ARTIFACT_TYPE, n: 200 + i }));
    const added = await seedIndex(app, [...foreign, ...legacy]);
    const r = await attachVsa(app.ref, envelope('staging', 1), labels('staging', 1), local);
    const { manifests } = await tagIndex(reg, 'team/legacy', app.imageDigest);
    expect(manifests.filter((d) => d.artifactType !== VSA_ARTIFACT_TYPE)).toEqual([...app.pushedReferrers, ...added.slice(0, foreign.length)]);
    const vsas = manifests.filter((d) => d.artifactType === VSA_ARTIFACT_TYPE).map((d) => d.digest);
    // The new one and the 31 last appended (the newest) of those without a creation time.
    expect(vsas).toEqual([...added.slice(-31).map((d) => d.digest), r.digest]);
    const out = join(dir, 'legacy-out.ctp');
    await fetchCtp(app.ref, out, local);
  });

  it('an index past the read bound: publishing and ct fetch fail with REGISTRY_REFERRERS_TOO_LARGE, the index untouched', async () => {
    const app = await pushed('huge');
    await seedIndex(app, [{ artifactType: VSA_ARTIFACT_TYPE, n: 1 }], 10_001);
    const before = (await tagIndex(reg, 'team/huge', app.imageDigest)).bytes;
    await expect(attachVsa(app.ref, envelope('staging', 1), labels('staging', 1), local)).rejects.toMatchObject({ code: 'REGISTRY_REFERRERS_TOO_LARGE' });
    await expect(fetchCtp(app.ref, join(dir, 'huge-out.ctp'), local)).rejects.toMatchObject({ code: 'REGISTRY_REFERRERS_TOO_LARGE' });
    expect(Buffer.compare((await tagIndex(reg, 'team/huge', app.imageDigest)).bytes, before)).toBe(0);
  }, 60_000);
});

describe('deploy VSAs on a registry with the referrers API (stand-in)', () => {
  let srv: Server;
  let port: number;
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, Buffer>();
  const deletes: string[] = [];
  let deleteStatus = 202;
  /** How long the stand-in takes to answer a DELETE (a slow registry). */
  let deleteDelayMs = 0;
  /** Descriptors the stand-in lists besides its manifests: a hostile registry's lies. */
  const lies: Descriptor[] = [];
  const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageManifest, config: EMPTY_DESCRIPTOR, layers: [] }));
  const imageDigest = sha256Digest(image);
  const ours = generateKeyPairSync('ed25519');
  const foreign = generateKeyPairSync('ed25519');
  const OURS = keyIdOf(ours.publicKey);
  const ref = () => `127.0.0.1:${port}/team/app@${imageDigest}`;
  /** A real deploy VSA of the n-th deploy, signed by `key`. */
  const signed = (env: string, n: number, key = ours.privateKey) => signDeployVsa({ verifierId: 'urn:test', environment: env, imageDigest, reference: ref(), time: new Date(T0 + n * 60_000) }, key);
  /** What the server passes: only VSAs of its own key, this image and the environment are deleted. */
  const prune = (env: string) => ({ isOurs: (b: Buffer) => isOwnDeployVsa(b, { keyId: OURS, publicKey: ours.publicKey }, { imageDigest, environment: env }) });
  const publish = (env: string, n: number, verifier = OURS, key = ours.privateKey) => attachVsa(ref(), signed(env, n, key), labels(env, n, verifier), local, prune(env));
  beforeAll(async () => {
    manifests.set(imageDigest, image);
    srv = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const url = req.url!;
        const digest = url.split('/').pop()!.split('?')[0];
        if (req.method === 'HEAD' && url.includes('/blobs/')) return void res.writeHead(blobs.has(digest) ? 200 : 404).end();
        if (req.method === 'POST' && url.includes('/blobs/uploads/')) return void res.writeHead(202, { location: '/v2/team/app/blobs/uploads/one' }).end();
        if (req.method === 'PUT' && url.includes('/blobs/uploads/')) {
          blobs.set(new URL(url, 'http://x').searchParams.get('digest')!, Buffer.concat(chunks));
          return void res.writeHead(201).end();
        }
        if (req.method === 'GET' && url.includes('/blobs/') && blobs.has(digest)) return void res.writeHead(200).end(blobs.get(digest));
        if (req.method === 'PUT' && url.includes('/manifests/')) {
          const body = Buffer.concat(chunks);
          manifests.set(sha256Digest(body), body);
          return void res.writeHead(201, { 'docker-content-digest': sha256Digest(body), 'oci-subject': imageDigest }).end();
        }
        if (req.method === 'GET' && url.includes('/manifests/') && manifests.has(digest)) {
          return void res.writeHead(200, { 'content-type': MT.imageManifest, 'docker-content-digest': digest }).end(manifests.get(digest));
        }
        if (req.method === 'DELETE' && url.includes('/manifests/')) {
          deletes.push(digest);
          // 404: another replica deleted it first.
          if (deleteStatus === 202 || deleteStatus === 404) manifests.delete(digest);
          const status = deleteStatus;
          return void setTimeout(() => res.writeHead(status).end(), deleteDelayMs);
        }
        if (req.method === 'GET' && url.startsWith(`/v2/team/app/referrers/${imageDigest}`)) {
          const list = [...manifests].filter(([d]) => d !== imageDigest).map(([d, b]) => {
            const m = JSON.parse(b.toString('utf8'));
            return { mediaType: MT.imageManifest, digest: d, size: b.length, artifactType: m.artifactType, annotations: m.annotations };
          });
          return void res.writeHead(200, { 'content-type': MT.imageIndex }).end(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageIndex, manifests: [...lies, ...list] }));
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    port = (srv.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => srv.close(() => r()));
  });
  beforeEach(() => {
    deletes.length = 0;
    lies.length = 0;
    deleteStatus = 202;
    deleteDelayMs = 0;
  });

  it('deletes the superseded VSA manifest of the same environment and key only; a refused delete is reported, not an error', async () => {
    const s1 = await publish('staging', 1);
    const p1 = await publish('production', 2);
    const other = await publish('staging', 3, 'b2'.repeat(32), foreign.privateKey);
    expect(deletes).toEqual([]);
    const s2 = await publish('staging', 4);
    expect(s2).toMatchObject({ via: 'api', notDeleted: [] });
    expect(deletes).toEqual([s1.digest]);
    expect([...manifests.keys()].sort()).toEqual([imageDigest, p1.digest, other.digest, s2.digest].sort());
    deleteStatus = 405;
    const s3 = await publish('staging', 5);
    expect(s3.notDeleted).toEqual([{ digest: s2.digest, code: 'REGISTRY_ERROR' }]);
    expect((await fetchVsas(ref(), local)).map((b) => sha256Digest(b))).toEqual([signed('staging', 5), signed('staging', 4), signed('staging', 3, foreign.privateKey), signed('production', 2)].map((b) => sha256Digest(b)));
    // Without a way to tell its own VSAs, a publisher deletes nothing.
    deleteStatus = 202;
    await attachVsa(ref(), signed('staging', 6), labels('staging', 6, OURS), local);
    expect(deletes).toEqual([s1.digest, s2.digest]);
  });

  it('a hostile list: the image itself, a foreign-signed VSA, our production VSA, a later staging one of ours (each listed as an old staging VSA of ours) and our envelope under another subject are not deleted', async () => {
    const lie = (digest: string, size: number) => ({ mediaType: MT.imageManifest, digest, size, artifactType: VSA_ARTIFACT_TYPE, annotations: vsaAnnotations({ environment: 'staging', verifier: OURS, created: new Date(T0) }) });
    // A real VSA manifest about the image, annotated as ours, whose envelope another key signed.
    const forged = await attachVsa(ref(), signed('staging', 0, foreign.privateKey), labels('staging', 0, OURS), local);
    const production = await publish('production', 10);
    // A later staging VSA of ours (another replica's with the same key), listed as older.
    const later = await attachVsa(ref(), signed('staging', 30), labels('staging', 30, OURS), local);
    // Our own older staging envelope, in a VSA manifest (annotated as an older staging one of ours) whose subject is another image.
    const ownLayer = signed('staging', 1);
    blobs.set(sha256Digest(ownLayer), ownLayer);
    const elsewhere = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.imageManifest, artifactType: VSA_ARTIFACT_TYPE, config: EMPTY_DESCRIPTOR,
      layers: [{ mediaType: DSSE_MEDIA_TYPE, digest: sha256Digest(ownLayer), size: ownLayer.length }],
      subject: { mediaType: MT.imageManifest, digest: sha256Digest(Buffer.from('another image')), size: 13 },
      annotations: vsaAnnotations({ environment: 'staging', verifier: OURS, created: new Date(T0) }),
    }));
    const elsewhereDigest = sha256Digest(elsewhere);
    manifests.set(elsewhereDigest, elsewhere);
    lies.push(lie(imageDigest, image.length), lie(production.digest, 1), lie(later.digest, 1));
    deletes.length = 0;
    // Our older staging VSAs (left by the test before): these do go.
    const older = [...manifests].filter(([d, b]) => d !== forged.digest && d !== later.digest && d !== elsewhereDigest && JSON.parse(b.toString('utf8')).annotations?.[ANNOTATION_VSA_ENVIRONMENT] === 'staging' && JSON.parse(b.toString('utf8')).annotations?.['dev.cerro-torre.vsa.verifier'] === OURS).map(([d]) => d);
    expect(older.length).toBeGreaterThan(0);
    const s = await publish('staging', 20);
    expect(s.notDeleted).toEqual([]);
    expect(deletes).not.toContain(imageDigest);
    expect(deletes).not.toContain(production.digest);
    expect(deletes).not.toContain(forged.digest);
    expect(deletes).not.toContain(later.digest);
    expect(deletes).not.toContain(elsewhereDigest);
    expect(manifests.has(imageDigest) && manifests.has(forged.digest) && manifests.has(production.digest)).toBe(true);
    expect([...deletes].sort()).toEqual(older.sort());
  });

  it('a delete answered 404 (another replica deleted it) counts as done and the next is deleted; a 500 is reported and the next tried; 403 stops the rest', async () => {
    deleteStatus = 405;
    const q1 = await publish('qa', 1);
    const q2 = await publish('qa', 2);
    deleteStatus = 404;
    const q3 = await publish('qa', 3);
    expect(q3.notDeleted).toEqual([]);
    expect(deletes.slice(-2)).toEqual([q1.digest, q2.digest]);
    deleteStatus = 405;
    const q4 = await publish('qa', 4);
    deletes.length = 0;
    // A server error on one is reported and the next is still tried.
    deleteStatus = 500;
    const q5 = await publish('qa', 5);
    expect(deletes).toEqual([q3.digest, q4.digest]);
    expect(q5.notDeleted).toEqual([{ digest: q3.digest, code: 'REGISTRY_ERROR' }, { digest: q4.digest, code: 'REGISTRY_ERROR' }]);
    deletes.length = 0;
    deleteStatus = 403;
    const q6 = await publish('qa', 6);
    expect(deletes).toEqual([q3.digest]);
    expect(q6.notDeleted).toEqual([{ digest: q3.digest, code: 'REGISTRY_AUTH_FAILED' }]);
  });

  it('a listed VSA manifest of 1 MiB (ours in every other way) is skipped, not deleted; the smaller ones still are', async () => {
    deleteStatus = 405;
    const b1 = await publish('big', 1);
    deleteStatus = 202;
    // A VSA manifest of ours about this image, an older one of the series, padded to 1 MiB.
    const layer = signed('big', 2);
    blobs.set(sha256Digest(layer), layer);
    const big = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.imageManifest, artifactType: VSA_ARTIFACT_TYPE, config: EMPTY_DESCRIPTOR,
      layers: [{ mediaType: DSSE_MEDIA_TYPE, digest: sha256Digest(layer), size: layer.length }],
      subject: { mediaType: MT.imageManifest, digest: imageDigest, size: image.length },
      annotations: { ...vsaAnnotations({ environment: 'big', verifier: OURS, created: new Date(T0 + 2 * 60_000) }), pad: 'x'.repeat(1024 * 1024) },
    }));
    expect(big.length).toBeGreaterThan(MAX_CANDIDATE_MANIFEST);
    manifests.set(sha256Digest(big), big);
    deletes.length = 0;
    const b3 = await publish('big', 3);
    expect(b3.notDeleted).toEqual([]);
    expect(deletes).toEqual([b1.digest]);
    expect(manifests.has(sha256Digest(big))).toBe(true);
    // Reading: the big one is skipped, the lookup does not fail for it.
    const read = (await fetchVsas(ref(), local)).map((b) => sha256Digest(b));
    expect(read).toContain(sha256Digest(signed('big', 3)));
    expect(read).not.toContain(sha256Digest(layer));
  });

  it('a registry slow to answer deletes: past the pruning deadline no more is deleted, the one under way reported like a refused delete', async () => {
    deleteStatus = 405;
    const d1 = await publish('slow', 1);
    const d2 = await publish('slow', 2);
    const d3 = await publish('slow', 3);
    deleteStatus = 202;
    deleteDelayMs = 1000;
    deletes.length = 0;
    const started = Date.now();
    const d4 = await attachVsa(ref(), signed('slow', 4), labels('slow', 4, OURS), local, { ...prune('slow'), deadlineMs: 1500 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(d4.via).toBe('api');
    // The first delete is answered in time; the second is cut at the deadline; the third is never sent.
    expect(deletes).toEqual([d1.digest, d2.digest]);
    expect(d4.notDeleted).toEqual([{ digest: d2.digest, code: 'NETWORK_ERROR' }]);
    expect(deletes).not.toContain(d3.digest);
  });
});
