import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { MT } from '../../src/oci/media-types.js';
import { pushCtp } from '../../src/oci/push.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { sha256Digest } from '../../src/core/digest.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const local = { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true };
const SUBJECT = 'sha256:' + 'cd'.repeat(32);

describe('referrers API (a registry that has it)', () => {
  let srv: Server;
  let port: number;
  const puts: string[] = [];
  beforeAll(async () => {
    srv = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'PUT' && req.url!.includes('/manifests/')) {
          puts.push(req.url!);
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          res.writeHead(201, { 'docker-content-digest': sha256Digest(Buffer.concat(chunks)), ...(body.subject ? { 'oci-subject': body.subject.digest } : {}) }).end();
          return;
        }
        if (req.method === 'GET' && req.url!.startsWith(`/v2/team/app/referrers/${SUBJECT}`)) {
          res.writeHead(200, { 'content-type': MT.imageIndex });
          res.end(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageIndex, manifests: [
            { mediaType: MT.imageManifest, digest: 'sha256:' + '01'.repeat(32), size: 10, artifactType: MT.sigstoreBundle },
            { mediaType: MT.imageManifest, digest: 'sha256:' + '02'.repeat(32), size: 10, artifactType: MT.vcsBundle },
          ] }));
          return;
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

  it('lists referrers through the API and filters by artifactType', async () => {
    const c = await RegistryClient.open(parseReference(`127.0.0.1:${port}/team/app`), local);
    try {
      const all = await c.referrers(SUBJECT);
      expect(all.via).toBe('api');
      expect(all.descriptors).toHaveLength(2);
      const sig = await c.referrers(SUBJECT, MT.sigstoreBundle);
      expect(sig.descriptors.map((d) => d.digest)).toEqual(['sha256:' + '01'.repeat(32)]);
    } finally {
      await c.close();
    }
  });

  it('reports subjectAccepted when the registry answers OCI-Subject', async () => {
    const c = await RegistryClient.open(parseReference(`127.0.0.1:${port}/team/app`), local);
    try {
      const withSubject = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageManifest, config: {}, layers: [], subject: { digest: SUBJECT } }));
      const r = await c.putManifest(sha256Digest(withSubject), withSubject, MT.imageManifest);
      expect(r.subjectAccepted).toBe(true);
      const plain = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageManifest, config: {}, layers: [] }));
      expect((await c.putManifest('v1', plain, MT.imageManifest)).subjectAccepted).toBe(false);
    } finally {
      await c.close();
    }
  });
});

describe('hostile registry content', () => {
  let reg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'ct-oci-hostile-'));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a blob altered in the registry storage fails the fetch (DIGEST_MISMATCH) and writes nothing', async () => {
    const ctp = join(dir, 'a.ctp');
    const fx = await makeCtp(ctp, { name: 'tamper', layers: [{ 'bin/tool': Buffer.alloc(5000, 3) }] });
    await pushCtp(ctp, `${reg.host}/team/tamper:1`, local);
    // Flip one byte of the layer blob as the filesystem driver stores it (…/blobs/sha256/ab/<hex>/data).
    const client = await RegistryClient.open(parseReference(`${reg.host}/team/tamper:1`), local);
    const img = JSON.parse((await client.getManifest(fx.imageDigest)).bytes.toString('utf8'));
    await client.close();
    const hex = img.layers[0].digest.slice(7);
    const data = join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const bytes = await readFile(data);
    bytes[bytes.length - 10] ^= 0xff;
    await writeFile(data, bytes);
    const out = join(dir, 'out.ctp');
    await expect(fetchCtp(`${reg.host}/team/tamper:1`, out, local)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  // A multi-megabyte layer arrives in many chunks, hashed while it downloads: a change in its
  // middle, a shorter or a longer blob must each fail the fetch the same way.
  it.each([
    ['one byte changed in the middle', (b: Buffer) => ((b[b.length >> 1] ^= 0x01), b)],
    ['cut short', (b: Buffer) => b.subarray(0, b.length - 70000)],
    ['longer', (b: Buffer) => Buffer.concat([b, Buffer.alloc(1 << 20, 7)])],
  ])('a big layer %s in the registry storage fails the fetch (DIGEST_MISMATCH) and writes nothing', async (what, alter) => {
    const name = `big-${what.split(' ')[0]}`;
    const ctp = join(dir, `${name}.ctp`);
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const fx = await makeCtp(ctp, { name, layers: [{ 'bin/big': big }] });
    await pushCtp(ctp, `${reg.host}/team/${name}:1`, local);
    const client = await RegistryClient.open(parseReference(`${reg.host}/team/${name}:1`), local);
    const img = JSON.parse((await client.getManifest(fx.imageDigest)).bytes.toString('utf8'));
    await client.close();
    const hex = img.layers[0].digest.slice(7);
    const data = join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    await writeFile(data, alter(await readFile(data)));
    const out = join(dir, `${name}-out.ctp`);
    await expect(fetchCtp(`${reg.host}/team/${name}:1`, out, local)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('a blob missing from the registry fails the fetch with a registry code, without hanging or leaving files', async () => {
    const ctp = join(dir, 'gone.ctp');
    const fx = await makeCtp(ctp, { name: 'gone', layers: [{ 'a': 'a' }, { 'b': Buffer.alloc(4000, 1) }, { 'c': 'c' }] });
    await pushCtp(ctp, `${reg.host}/team/gone:1`, local);
    const client = await RegistryClient.open(parseReference(`${reg.host}/team/gone:1`), local);
    const img = JSON.parse((await client.getManifest(fx.imageDigest)).bytes.toString('utf8'));
    await client.close();
    const hex = img.layers[1].digest.slice(7);
    await rm(join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex), { recursive: true });
    const out = join(dir, 'gone-out.ctp');
    const err = await fetchCtp(`${reg.host}/team/gone:1`, out, { ...local, concurrency: 1 }).then(() => undefined, (e: { code?: string }) => e);
    expect(err?.code).toBe('REGISTRY_NOT_FOUND');
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('a recipe of another image attached to this one is refused (no downgrade through referrers)', async () => {
    const a = join(dir, 'new.ctp');
    const b = join(dir, 'old.ctp');
    const fa = await makeCtp(a, { name: 'app', layers: [{ v: '2' }] });
    const fb = await makeCtp(b, { name: 'app', layers: [{ v: '1' }] });
    await pushCtp(a, `${reg.host}/team/app:2`, local);
    await pushCtp(b, `${reg.host}/team/app:1`, local);
    // The registry forges a recipe manifest whose subject is the new image but whose layers rebuild the old .ctp.
    const c = await RegistryClient.open(parseReference(`${reg.host}/team/app:1`), local);
    try {
      const oldRecipe = (await c.referrers(fb.imageDigest, MT.ctpRecipe)).descriptors[0];
      const m = JSON.parse((await c.getManifest(oldRecipe.digest)).bytes.toString('utf8'));
      const subject = { mediaType: MT.imageManifest, digest: fa.imageDigest, size: (await c.getManifest(fa.imageDigest)).bytes.length };
      const forged = Buffer.from(JSON.stringify({ ...m, subject }));
      const { digest } = await c.putManifest(sha256Digest(forged), forged, MT.imageManifest);
      await c.addReferrerByTag(fa.imageDigest, { mediaType: MT.imageManifest, digest, size: forged.length, artifactType: MT.ctpRecipe, annotations: m.annotations });
    } finally {
      await c.close();
    }
    const out = join(dir, 'forged-out.ctp');
    await expect(fetchCtp(`${reg.host}/team/app:2`, out, local)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH', details: { expected: fa.imageDigest, actual: fb.imageDigest } });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    // choosing the genuine recipe by bundle digest still works
    await fetchCtp(`${reg.host}/team/app:2`, out, { ...local, bundleDigest: fa.bundleDigest });
    expect(Buffer.compare(await readFile(out), await readFile(a))).toBe(0);
  });

  it('a .ctp whose layout blob does not match its name is refused before anything is sent', async () => {
    const ctp = join(dir, 'bad.ctp');
    await makeCtp(ctp, { name: 'bad' });
    const bytes = await readFile(ctp);
    // The config blob is plain JSON inside the (uncompressed) .ctp: change one byte of it.
    const i = bytes.indexOf(Buffer.from('"architecture":"amd64"'));
    expect(i).toBeGreaterThan(0);
    bytes[i + 20] = '5'.charCodeAt(0);
    await writeFile(ctp, bytes);
    await expect(pushCtp(ctp, `${reg.host}/team/bad:1`, local)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    const c = await RegistryClient.open(parseReference(`${reg.host}/team/bad:1`), local);
    try {
      expect(await c.listTags()).toEqual([]);
    } finally {
      await c.close();
    }
  });
});
