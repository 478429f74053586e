/**
 * /mcp as an AI agent meets it, through the SDK's own client over Streamable HTTP on a light server
 * (no registry, no host): what tools/list tells it, whether it can page through what grows, and
 * what it reads when it calls a tool wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { testServer } from '../server/support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';

type Row = Record<string, unknown>;
type ToolResult = { isError?: boolean; structuredContent?: Row; content: Array<{ type: string; text?: string }> };

describe('/mcp for an agent', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  let agent: Client;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    viewer = (await createApiKey(server.ctx.db, 'agent-viewer', 'viewer')).key;
    agent = new Client({ name: 'agent', version: '1.0.0' });
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${viewer}` } } }));
  });
  afterAll(async () => {
    await agent.close();
    await server.close();
  });
  const call = async (name: string, args: Row = {}) => (await agent.callTool({ name, arguments: args })) as ToolResult;

  it('list_deployments pages: next is handed back and, passed as before, answers the older deployments', async () => {
    const t0 = Date.now() - 10_000;
    for (let i = 0; i < 5; i++) {
      await server.ctx.db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, hosts, created_at, updated_at) VALUES (?, 'production', 'paged', ?, ?, 'succeeded', '{}', ?, ?)`, [`dep-page-${i}`, `c0ffee${i}`, `registry.example/acme/paged@sha256:${String(i).repeat(64)}`, t0 + i, t0 + i]);
    }
    const first = await call('list_deployments', { app: 'paged', limit: 2 });
    expect(first.isError).toBeFalsy();
    expect((first.structuredContent?.deployments as Row[]).map((d) => d.id)).toEqual(['dep-page-4', 'dep-page-3']);
    const seen: unknown[] = [];
    let next = first.structuredContent?.next;
    while (typeof next === 'string') {
      const page = await call('list_deployments', { app: 'paged', limit: 2, before: next });
      seen.push(...(page.structuredContent?.deployments as Row[]).map((d) => d.id));
      next = page.structuredContent?.next;
    }
    expect(seen).toEqual(['dep-page-2', 'dep-page-1', 'dep-page-0']);
    expect(next).toBeNull();
  });
});
