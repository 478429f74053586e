/**
 * Refused MCP tool calls are audited within a per-principal budget: a read-only key sending batch
 * after batch of unknown tools no longer writes a kept mcp.tool record for each; the excess is
 * summarised (REFUSALS_NOT_RECORDED with the count), and other principals' refusals still are written.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { REFUSAL_BUDGET } from '../../server/mcp/route.js';

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
});
