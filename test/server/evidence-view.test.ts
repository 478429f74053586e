/**
 * `GET /api/v1/deployments/{id}/evidence` shows the stored bundle's manifest and security files.
 * A stored bundle is named by its digest and never changes: it is read once, not on every view
 * (each read streams and hashes the whole archive, hundreds of MiB for a big image).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { tempDir, writeUnsignedCtp } from '../verify/ctp-fixtures.js';

describe('the evidence view of a deployment', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let stored: string;
  let digest: string;
  beforeAll(async () => {
    server = await testServer();
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    tmp = await tempDir('ct-evidence-view-');
    const ctp = join(tmp.dir, 'b.ctp');
    await writeUnsignedCtp(ctp);
    digest = `sha256:${createHash('sha256').update(readFileSync(ctp)).digest('hex')}`;
    await mkdir(join(server.dir, 'bundles'), { recursive: true });
    stored = join(server.dir, 'bundles', `${digest.slice(7)}.ctp`);
    await copyFile(ctp, stored);
    for (const [id, d] of [['with-bundle', digest], ['not-stored', `sha256:${'e'.repeat(64)}`]]) {
      await server.ctx.db.run(
        `INSERT INTO deployments (id, environment, app, commit_sha, reference, status, hosts, created_at, updated_at, evidence, bundle_digest) VALUES (?, 'production', ?, 'c', 'registry.example/web@sha256:${'a'.repeat(64)}', 'succeeded', '{}', 1, 1, '{"signers":[]}', ?)`,
        [id, id, d],
      );
    }
  });
  afterAll(async () => {
    await server?.close();
    await tmp?.cleanup();
  });

  const view = async (id: string) => {
    const res = await fetch(`${server.url}/api/v1/deployments/${id}/evidence`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as { bundle: { name?: string; security?: { seccomp?: unknown } } | null; bundleDigest: string };
  };

  it('shows the stored bundle\'s facts, read once: a later view does not read the file again', async () => {
    const first = await view('with-bundle');
    expect(first.bundleDigest).toBe(digest);
    expect(first.bundle).toMatchObject({ name: expect.any(String) });
    // Were the file read again, this would now fail to parse and the view would show no bundle.
    await writeFile(stored, 'not a bundle');
    const views = await Promise.all([view('with-bundle'), view('with-bundle'), view('with-bundle')]);
    for (const v of views) expect(v.bundle).toEqual(first.bundle);
  });

  it('a bundle the server does not hold: no facts, and none remembered once it is stored', async () => {
    expect((await view('not-stored')).bundle).toBeNull();
    await copyFile(join(tmp.dir, 'b.ctp'), join(server.dir, 'bundles', `${'e'.repeat(64)}.ctp`));
    expect((await view('not-stored')).bundle).toMatchObject({ name: expect.any(String) });
  });
});
