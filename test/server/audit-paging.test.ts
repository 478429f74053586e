/**
 * The audit log a page at a time: a (time, id) cursor that neither skips nor repeats records
 * sharing a millisecond, and a text search that says when it stopped reading (its window of
 * SCAN_ROWS rows) instead of answering an empty or cut list as if that were all.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { SCAN_ROWS } from '../../server/routes/audit.js';

type Page = { entries: Array<{ id: string; kind: string; record: { n?: number; needle?: boolean } }>; next: string | null; truncated: boolean };

describe('GET /api/v1/audit: paging and bounded search', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let auditor: string;
  const T = 1_700_000_000_000;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    auditor = (await createApiKey(server.ctx.db, 'pager', 'auditor')).key;
    // 25 records in one millisecond; then SCAN_ROWS + 50 newer filler records of which none holds the
    // needle, and 3 needles older than all of them (beyond one search's window).
    await server.ctx.db.run(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25)
       INSERT INTO audit (id, time, kind, subject, record) SELECT 'same-' || i, ?, 'test.same', NULL, '{"n":' || i || '}' FROM n`,
      [T],
    );
    await server.ctx.db.run(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3)
       INSERT INTO audit (id, time, kind, subject, record) SELECT 'needle-' || i, ? + i, 'test.scan', NULL, '{"needle":true}' FROM n`,
      [T + 10],
    );
    await server.ctx.db.run(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO audit (id, time, kind, subject, record) SELECT 'fill-' || i, ? + i, 'test.scan', NULL, '{"hay":1}' FROM n`,
      [SCAN_ROWS + 50, T + 100],
    );
  }, 60_000);
  afterAll(() => server.close());

  const get = (query: string) => fetch(`${server.url}/api/v1/audit?${query}`, { headers: { authorization: `Bearer ${auditor}` } });
  const page = async (query: string): Promise<Page> => {
    const res = await get(query);
    expect(res.status).toBe(200);
    return (await res.json()) as Page;
  };

  it('pages records sharing a millisecond with the (time, id) cursor: each exactly once, then next is null', async () => {
    const seen: number[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const p: Page = await page(`kind=test.same&limit=10${next ? `&before=${encodeURIComponent(next)}` : ''}`);
      seen.push(...p.entries.map((e) => e.record.n as number));
      next = p.next;
      expect(p.truncated).toBe(false);
    } while (next && ++pages < 10);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(pages).toBe(2);
  });

  it('a text search whose window ran out says so and goes on from where it stopped', async () => {
    const first = await page('kind=test.scan&q=needle&limit=10');
    // Nothing in the newest SCAN_ROWS rows: not an empty list that looks final.
    expect(first.entries).toEqual([]);
    expect(first.truncated).toBe(true);
    expect(first.next).toMatch(/^\d+:fill-\d+$/);
    const second = await page(`kind=test.scan&q=needle&limit=10&before=${encodeURIComponent(first.next as string)}`);
    expect(second.entries.map((e) => e.id)).toEqual(['needle-3', 'needle-2', 'needle-1']);
    expect(second.truncated).toBe(false);
    expect(second.next).toBeNull();
  });

  it('a search that fills its page hands the cursor of its last match', async () => {
    const p = await page('kind=test.scan&q=needle&limit=2&before=' + encodeURIComponent(`${T + 100}:a`));
    expect(p.entries.map((e) => e.id)).toEqual(['needle-3', 'needle-2']);
    expect(p.next).toBe(`${T + 12}:needle-2`);
    expect(p.truncated).toBe(false);
  });

  it('the JSON lines export carries next and truncated in headers', async () => {
    const res = await get('kind=test.scan&q=needle&limit=10&format=jsonl');
    expect(res.status).toBe(200);
    expect(res.headers.get('ct-truncated')).toBe('true');
    expect(res.headers.get('ct-next')).toMatch(/^\d+:fill-\d+$/);
    expect(await res.text()).toBe('');
  });

  it('the MCP audit_search tool hands next and truncated on, and takes before', async () => {
    const tool = async (args: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auditor}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'audit_search', arguments: args } }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { result: { structuredContent: { entries: Array<{ id: string }>; next: string | null; truncated: boolean } } }).result.structuredContent;
    };
    const first = await tool({ kind: 'test.scan', text: 'needle', limit: 10 });
    expect(first).toMatchObject({ entries: [], truncated: true, next: expect.stringMatching(/^\d+:fill-\d+$/) });
    const second = await tool({ kind: 'test.scan', text: 'needle', limit: 10, before: first.next });
    expect(second.entries.map((e) => e.id)).toEqual(['needle-3', 'needle-2', 'needle-1']);
    expect(second.next).toBeNull();
  });

  it('refuses a malformed cursor (400) rather than answering the first page again', async () => {
    for (const before of ['x', '12:', ':a', '1:a b', `${'9'.repeat(16)}:a`]) {
      const res = await get(`kind=test.same&before=${encodeURIComponent(before)}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    }
  });
});
