/**
 * Refused MCP tool calls are audited within a per-principal budget: a read-only key sending batch
 * after batch of unknown tools no longer writes a kept mcp.tool record for each; the excess is
 * summarised (REFUSALS_NOT_RECORDED with the count), and other principals' refusals still are written.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { mcpRoutes, REFUSAL_BUDGET } from '../../server/mcp/route.js';
import type { AddressInfo } from 'node:net';

type Row = Record<string, unknown>;

describe('/mcp: the audit budget of refused calls', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
  });
  afterAll(() => server.close());

  const batch = async (token: string, n: number) => {
    const messages = Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'nope', arguments: {} } }));
    const res = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify(messages),
    });
    expect(res.status).toBe(200);
    const answers = (await res.json()) as Array<{ result?: { isError?: boolean } }>;
    // Every call is still answered as refused, written or not.
    expect(answers.filter((a) => a.result?.isError)).toHaveLength(n);
  };
  const records = async (keyId: string) =>
    (await server.ctx.db.query<{ record: string }>(`SELECT record FROM audit WHERE kind = 'mcp.tool'`))
      .map((r) => JSON.parse(r.record) as Row)
      .filter((r) => (r.principal as Row | null)?.id === keyId);

  it('writes at most the burst of one principal\'s refusals, then a summary with the count', async () => {
    const flood = await createApiKey(server.ctx.db, 'flooder', 'viewer');
    const sent = REFUSAL_BUDGET.burst + 80;
    for (let i = 0; i < sent / 16; i++) await batch(flood.key, 16);
    const mine = await records(flood.id);
    const written = mine.filter((r) => r.code === 'UNKNOWN_TOOL');
    // The bucket refills 0.2 a second: a couple more at most while the test runs.
    expect(written.length).toBeGreaterThanOrEqual(REFUSAL_BUDGET.burst);
    expect(written.length).toBeLessThanOrEqual(REFUSAL_BUDGET.burst + 5);
    expect(mine.filter((r) => r.code === 'REFUSALS_NOT_RECORDED')).toEqual([expect.objectContaining({ ok: false, dropped: expect.any(Number) })]);

    // Another principal's refusals are its own budget's.
    const other = await createApiKey(server.ctx.db, 'other', 'viewer');
    await batch(other.key, 3);
    expect((await records(other.id)).filter((r) => r.code === 'UNKNOWN_TOOL')).toHaveLength(3);
  }, 60_000);

  it('counts every refusal past the budget, written or summed up, once the window passed and when the server stops', async () => {
    // A budget of 10 summed up every 300 ms, on a server of its own.
    const budget = { ...REFUSAL_BUDGET, burst: 10, perSecond: 0.001, summaryEveryMs: 300 };
    let base: string | undefined;
    const own = await testServer({}, {
      extend: async (ctx) => {
        const mcp = mcpRoutes(ctx, { apiBase: () => base, refusalBudget: budget });
        return { routers: [mcp.router], onListen: (s) => void (base = `http://127.0.0.1:${(s.address() as AddressInfo).port}`), close: mcp.close };
      },
    });
    const flood = await createApiKey(own.ctx.db, 'burst', 'viewer');
    const outer = server;
    server = own;
    const counted = async () => {
      const mine = await records(flood.id);
      return {
        written: mine.filter((r) => r.code === 'UNKNOWN_TOOL').length,
        summed: mine.filter((r) => r.code === 'REFUSALS_NOT_RECORDED').reduce((n, r) => n + (r.dropped as number), 0),
      };
    };
    try {
      // A burst well within one window: the first refusal past the budget is summed up at once, the rest wait.
      let sent = 0;
      for (let i = 0; i < 5; i++, sent += 16) await batch(flood.key, 16);
      await new Promise((r) => setTimeout(r, budget.summaryEveryMs + 200));
      // Nothing more came: the timer summed up the rest.
      let c = await counted();
      expect(c.written).toBe(budget.burst);
      expect(c.written + c.summed).toBe(sent);
      // Refused again, then the server stops before the window passed: the stop writes the count.
      await batch(flood.key, 16);
      sent += 16;
      await batch(flood.key, 16);
      sent += 16;
      const db = own.ctx.db;
      const close = db.close.bind(db);
      // Read as the database closes (after the stop wrote what it had to).
      let atClose: { written: number; summed: number } | undefined;
      db.close = async () => {
        atClose = await counted();
        return close();
      };
      await own.close();
      c = atClose!;
      expect(c.written + c.summed).toBe(sent);
    } finally {
      server = outer;
    }
  }, 60_000);
});
