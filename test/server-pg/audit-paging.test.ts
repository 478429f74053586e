/**
 * The audit log's (time, id) cursor on PostgreSQL (the row-value comparison and the bound LIMIT):
 * records sharing a millisecond are each paged exactly once, and a text search that read its whole
 * window says so (truncated, next) rather than answering an empty list as final.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { SCAN_ROWS } from '../../server/routes/audit.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

type Page = { entries: Array<{ id: string }>; next: string | null; truncated: boolean };

describe('GET /api/v1/audit paging (PostgreSQL)', () => {
  let pg: Postgres;
  let server: Awaited<ReturnType<typeof testServer>>;
  let auditor: string;
  const T = 1_700_000_000_000;
  beforeAll(async () => {
    pg = await startPostgres();
    server = await testServer({ databaseUrl: pg.url }, { extend: (ctx) => deployPipeline(ctx) });
    auditor = (await createApiKey(server.ctx.db, 'pager', 'auditor')).key;
    await server.ctx.db.run(`INSERT INTO audit (id, time, kind, subject, record) SELECT 'same-' || i, CAST(? AS BIGINT), 'test.same', NULL, '{}' FROM generate_series(1, 25) AS i`, [T]);
    await server.ctx.db.run(`INSERT INTO audit (id, time, kind, subject, record) SELECT 'needle-' || i, CAST(? AS BIGINT) + i, 'test.scan', NULL, '{"needle":true}' FROM generate_series(1, 3) AS i`, [T + 10]);
    await server.ctx.db.run(`INSERT INTO audit (id, time, kind, subject, record) SELECT 'fill-' || i, CAST(? AS BIGINT) + i, 'test.scan', NULL, '{"hay":1}' FROM generate_series(1, CAST(? AS INTEGER)) AS i`, [T + 100, SCAN_ROWS + 50]);
  }, 90_000);
  afterAll(async () => {
    await server?.close();
    await pg?.stop();
  });

  const page = async (query: string): Promise<Page> => {
    const res = await fetch(`${server.url}/api/v1/audit?${query}`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as Page;
  };

  it('pages one millisecond\'s records exactly once, and a cut search goes on from where it stopped', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    for (let i = 0; i < 10; i++) {
      const p: Page = await page(`kind=test.same&limit=10${next ? `&before=${encodeURIComponent(next)}` : ''}`);
      seen.push(...p.entries.map((e) => e.id));
      next = p.next;
      if (!next) break;
    }
    expect(seen.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `same-${i + 1}`).sort());
    const first = await page('kind=test.scan&q=needle&limit=10');
    expect(first).toMatchObject({ entries: [], truncated: true, next: expect.stringMatching(/^\d+:fill-\d+$/) });
    const second = await page(`kind=test.scan&q=needle&limit=10&before=${encodeURIComponent(first.next as string)}`);
    expect(second.entries.map((e) => e.id)).toEqual(['needle-3', 'needle-2', 'needle-1']);
    expect(second.next).toBeNull();
  });
});
