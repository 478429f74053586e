/**
 * `GET /api/v1/deployments`: filters by app and status (documented in /openapi.json), pages with
 * the (created_at, id) cursor, and refuses a malformed `before` or a `limit` below 1 with 400 (one above 500 is read as 500)
 * instead of answering the first page again or 500 rows.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { deployPipeline } from '../../server/deploy/wire.js';

type List = { deployments: Array<{ id: string; app: string; status: string }>; next: string | null };

describe('GET /api/v1/deployments: filters, cursor and bounds', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    const t = 1_700_000_000_000;
    for (let i = 0; i < 7; i++) {
      const app = i % 2 ? 'web' : 'api';
      // Four rows share one millisecond: the cursor's id tells them apart.
      await server.ctx.db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, hosts, created_at, updated_at) VALUES (?, 'production', ?, ?, 'r', ?, '{}', ?, ?)`, [`d${i}`, app, `c${i}`, i < 5 ? 'succeeded' : 'denied', t + Math.min(i, 3), t]);
    }
  });
  afterAll(() => server.close());

  const get = (query: string) => fetch(`${server.url}/api/v1/deployments?${query}`, { headers: { authorization: `Bearer ${viewer}` } });
  const list = async (query: string): Promise<List> => {
    const res = await get(query);
    expect(res.status).toBe(200);
    return (await res.json()) as List;
  };

  it('refuses a malformed before and a limit that is no whole number from 1 (400 BAD_REQUEST)', async () => {
    for (const q of ['before=garbage', 'before=12:', `before=${'9'.repeat(16)}:d1`, 'limit=0', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=1&limit=2']) {
      const res = await get(q);
      expect([q, res.status]).toEqual([q, 400]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    }
  });

  it('pages every row once with next, and filters by app and status', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page: List = await list(`limit=2${next ? `&before=${encodeURIComponent(next)}` : ''}`);
      seen.push(...page.deployments.map((d) => d.id));
      next = page.next;
      if (!next) break;
    }
    expect(seen.sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6']);
    expect((await list('app=web')).deployments.map((d) => d.id).sort()).toEqual(['d1', 'd3', 'd5']);
    expect((await list('status=denied&app=api')).deployments.map((d) => d.id)).toEqual(['d6']);
    expect((await list('limit=500')).deployments).toHaveLength(7);
    // Asking for more than a page is no fault: read as a page (500), as before the cursor came.
    expect((await list('limit=1000')).deployments).toHaveLength(7);
    expect((await list('limit=501&before=')).deployments).toHaveLength(7);
    expect((await list(`limit=${'9'.repeat(20)}`)).deployments).toHaveLength(7);
  });

  it('documents app, status, before and limit in /openapi.json', async () => {
    const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, { get: { parameters: Array<{ name: string }>; responses: Record<string, unknown> } }> };
    const op = spec.paths['/api/v1/deployments'].get;
    expect(op.parameters.map((p) => p.name)).toEqual(expect.arrayContaining(['environment', 'app', 'status', 'imageDigest', 'before', 'limit']));
    expect(op.responses['400']).toBeDefined();
  });
});
