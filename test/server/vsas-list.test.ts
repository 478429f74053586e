/**
 * GET /api/v1/vsas: the deploy VSAs of an image, newest first, narrowed to one bundle and/or
 * environment, a page at a time. It listed the newest 64 of the image across every bundle and
 * environment, with no way to reach older ones or to ask for one deployment's environment.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';

const IMAGE = `sha256:${'a'.repeat(64)}`;
const OTHER_IMAGE = `sha256:${'f'.repeat(64)}`;
const BUNDLE = [`sha256:${'b'.repeat(64)}`, `sha256:${'c'.repeat(64)}`];

interface Vsa { deployment: string; environment: string; bundleDigest: string; imageDigest: string; createdAt: string; envelope: string }

describe('GET /api/v1/vsas', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    // 150 VSAs of one image: two bundles × two environments, several sharing a timestamp (a
    // page boundary inside a run of equal created_at must neither repeat nor skip a row).
    for (let i = 0; i < 150; i++) {
      await server.ctx.db.run(
        'INSERT INTO vsas (id, deployment_id, environment, app, image_digest, bundle_digest, envelope, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)',
        [`v-${String(i).padStart(3, '0')}`, `d-${i}`, i % 2 ? 'production' : 'staging', 'web', IMAGE, BUNDLE[i % 3 === 0 ? 1 : 0], `{"n":${i}}`, 1_700_000_000_000 + Math.floor(i / 4)],
      );
    }
    await server.ctx.db.run(
      'INSERT INTO vsas (id, deployment_id, environment, app, image_digest, bundle_digest, envelope, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)',
      ['v-other', 'd-other', 'staging', 'web', OTHER_IMAGE, BUNDLE[0], '{}', 1_800_000_000_000],
    );
  });
  afterAll(async () => server.close());

  const get = async (query: string) => {
    const res = await fetch(`${server.url}/api/v1/vsas?${query}`, { headers: { authorization: `Bearer ${viewer}` } });
    return { status: res.status, body: (await res.json()) as { vsas: Vsa[]; next: string | null; error?: { code: string } } };
  };
  const all = async (query: string, limit?: number) => {
    const seen: Vsa[] = [];
    let next: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const r = await get(`${query}${limit ? `&limit=${limit}` : ''}${next ? `&before=${encodeURIComponent(next)}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...r.body.vsas);
      next = r.body.next;
      if (!next) return seen;
    }
    throw new Error('pages never ended');
  };

  it('pages through every VSA of the image once, newest first, 64 at most per page', async () => {
    const first = await get(`imageDigest=${IMAGE}`);
    expect(first.body.vsas).toHaveLength(64);
    expect(first.body.next).not.toBeNull();
    const seen = await all(`imageDigest=${IMAGE}`, 7);
    expect(seen).toHaveLength(150);
    expect(new Set(seen.map((v) => v.deployment)).size).toBe(150);
    const n = seen.map((v) => (JSON.parse(v.envelope) as { n: number }).n);
    expect(n).toEqual([...n].sort((a, b) => b - a));
    expect(seen.every((v) => v.imageDigest === IMAGE)).toBe(true);
  });

  it('narrows to one bundle and one environment', async () => {
    const some = await all(`imageDigest=${IMAGE}&bundleDigest=${BUNDLE[1]}&environment=production`, 5);
    const want = [...Array(150).keys()].filter((i) => i % 3 === 0 && i % 2 === 1).map((i) => `d-${i}`).reverse();
    expect(some.map((v) => v.deployment)).toEqual(want);
    expect((await get(`imageDigest=${IMAGE}&environment=staging&limit=1`)).body.vsas.map((v) => v.deployment)).toEqual(['d-148']);
  });

  it('reads a limit above a page (64) as 64, as every list does', async () => {
    const r = await get(`imageDigest=${IMAGE}&limit=65`);
    expect(r.status).toBe(200);
    expect(r.body.vsas).toHaveLength(64);
  });

  it('refuses a malformed filter with 400 BAD_REQUEST rather than listing everything', async () => {
    const bad = [
      `bundleDigest=sha256:xyz`, `environment=Prod%20uction`, `environment=a&environment=b`,
      // A damaged cursor or page size: refused, never the first page again (a client would loop).
      'before=garbage', 'before=1:a&before=2:b', 'before=99999999999999999:x', 'limit=0', 'limit=-1', 'limit=abc', 'limit=1&limit=2',
    ].map((q) => `imageDigest=${IMAGE}&${q}`);
    for (const q of [...bad, 'imageDigest=sha256:1']) {
      const r = await get(q);
      expect([q, r.status, r.body.error?.code]).toEqual([q, 400, 'BAD_REQUEST']);
    }
  });

  it('reads each page by a seek on (image, created_at, id), not a sort of the image history', async () => {
    const plan = await server.ctx.db.query<{ detail: string }>(
      'EXPLAIN QUERY PLAN SELECT id FROM vsas WHERE image_digest = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT 65', [IMAGE, 1, 'x'],
    );
    const text = plan.map((p) => p.detail).join('\n');
    expect(text).toContain('vsas_image_created_id');
    expect(text).not.toContain('TEMP B-TREE');
  });
});
