/**
 * /mcp as an AI agent meets it, through the SDK's own client over Streamable HTTP on a light server
 * (no registry, no host): what tools/list tells it, whether it can page through what grows, and
 * what it reads when it calls a tool wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
import { testServer } from '../server/support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { recordAudit } from '../../server/audit.js';

type Row = Record<string, unknown>;
type ToolResult = { isError?: boolean; structuredContent?: Row; content: Array<{ type: string; text?: string }> };

/** Every tool's arguments described where they are, never a JSON Schema `$ref` an agent's client may not resolve. */
async function expectSelfDescribed(agent: Client): Promise<Awaited<ReturnType<Client['listTools']>>['tools']> {
  const { tools } = await agent.listTools();
  for (const t of tools) {
    expect({ tool: t.name, ref: JSON.stringify(t.inputSchema).includes('$ref') }).toEqual({ tool: t.name, ref: false });
    for (const [arg, s] of Object.entries((t.inputSchema.properties ?? {}) as Record<string, Row>)) {
      expect({ tool: t.name, arg, described: typeof s.description === 'string' && s.description.length > 10 }).toEqual({ tool: t.name, arg, described: true });
    }
  }
  return tools;
}

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

  it('explain_decision for a viewer says the trail is withheld (the audit log is for auditors), not that nothing was recorded', async () => {
    const now = Date.now();
    await server.ctx.db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, hosts, created_at, updated_at) VALUES ('dep-explained', 'production', 'explained', 'c0ffee', ?, 'denied', '{}', ?, ?)`, [`registry.example/acme/explained@sha256:${'e'.repeat(64)}`, now, now]);
    await recordAudit(server.ctx.db, 'deploy.decision', 'dep-explained', { decision: 'REJECT', code: 'SIGNER_NOT_ALLOWED' });
    const r = await call('explain_decision', { id: 'dep-explained' });
    expect(r.structuredContent).toMatchObject({ deployment: 'dep-explained', trail: [], trailWithheld: true });
  });

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

describe('tools/list for an agent', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let agent: Client;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    const key = (await createApiKey(server.ctx.db, 'agent-admin', 'admin')).key;
    agent = new Client({ name: 'agent', version: '1.0.0' });
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  });
  afterAll(async () => {
    await agent.close();
    await server.close();
  });

  it('every argument is described in place: no $ref (clients that do not resolve one saw `app` without its pattern), statuses an enum', async () => {
    const tools = await expectSelfDescribed(agent);
    const list = tools.find((t) => t.name === 'list_deployments')!.inputSchema.properties as Record<string, Row>;
    expect(list.app).toMatchObject({ type: 'string', pattern: expect.any(String) });
    expect(list.status.enum).toEqual(expect.arrayContaining(['queued', 'succeeded', 'denied', 'failed']));
    // Each file may be 256 KiB, but the request carrying them is bounded: said where the agent reads it.
    expect((tools.find((t) => t.name === 'policy_impact')!.inputSchema.properties as Record<string, Row>).files.description).toContain('at most 1,048,576 bytes, all files together');
  });

  it('policy_impact states the server\'s own request limit: with maxBodyBytes 65,536, not 1 MiB, and a larger call is HTTP 413 as said', async () => {
    const small = await testServer({ maxBodyBytes: 65536 }, { extend: (ctx) => deployPipeline(ctx) });
    try {
      const key = (await createApiKey(small.ctx.db, 'mcp-small', 'viewer')).key;
      const client = new Client({ name: 'agent', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${small.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
      const files = ((await client.listTools()).tools.find((t) => t.name === 'policy_impact')!.inputSchema.properties as Record<string, Row>).files;
      expect(files.description).toContain('at most 65,536 bytes, all files together');
      expect(files.description).not.toContain('1 MiB');
      await client.close();
      const res = await fetch(`${small.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'policy_impact', arguments: { files: [{ path: 'p.policy.yaml', text: 'x'.repeat(100_000) }] } } }),
      });
      expect(res.status).toBe(413);
    } finally {
      await small.close();
    }
  });

  it('an argument the tool does not take is refused, not dropped: a misspelt filter answered every deployment as if they were the app\'s', async () => {
    const r = (await agent.callTool({ name: 'list_deployments', arguments: { application: 'hello' } })) as ToolResult;
    expect(r.isError).toBe(true);
    expect(r.content[0].text).toContain('application');
  });

  it('policy_impact of a proposal that does not compile says where and why (the API\'s issues), not only that it does not', async () => {
    const r = (await agent.callTool({ name: 'policy_impact', arguments: { files: [{ path: 'broken.policy.yaml', text: 'apiVersion: cerro-torre.dev/v1\nkind: Policy\nmetadata: {name: broken\nspec: [' }] } })) as ToolResult;
    expect(r.isError).toBe(true);
    const refusal = JSON.parse(r.content[0].text ?? '') as { code: string; details?: { untrusted: true; text: string } };
    expect(refusal.code).toBe('POLICY_INVALID');
    expect(refusal.details).toMatchObject({ untrusted: true, source: 'error details' });
    const issues = (JSON.parse(refusal.details!.text) as { issues: Row[] }).issues;
    expect(issues[0]).toMatchObject({ file: 'broken.policy.yaml', line: expect.any(Number), message: expect.any(String) });
  });

  it('a call refused before any tool runs answers as every refusal does: {code, message} with a stable code, the message as data', async () => {
    const refusal = async (name: string, args: Row) => {
      const r = (await agent.callTool({ name, arguments: args })) as ToolResult;
      expect(r.isError).toBe(true);
      return JSON.parse(r.content[0].text ?? '') as { code: string; message: Row };
    };
    expect(await refusal('rollback_everything', {})).toEqual({ code: 'UNKNOWN_TOOL', message: { untrusted: true, source: 'error message', text: expect.stringContaining('rollback_everything') } });
    expect(await refusal('get_deployment', { id: 5 })).toEqual({ code: 'INVALID_ARGUMENTS', message: { untrusted: true, source: 'error message', text: expect.stringContaining('id') } });
    expect(await refusal('list_deployments', { application: 'hello' })).toMatchObject({ code: 'INVALID_ARGUMENTS' });
  });
});

describe('/mcp and browser pages', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let key: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    key = (await createApiKey(server.ctx.db, 'agent-viewer', 'viewer')).key;
  });
  afterAll(() => server.close());
  const list = (headers: Record<string, string>) =>
    fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });

  it('a request with another site\'s Origin is 403 (the MCP transport spec asks servers to check it); agents send none', async () => {
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' }] as Record<string, string>[]) {
      const res = await list(headers);
      expect({ headers, status: res.status }).toEqual({ headers, status: 403 });
      expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN_ORIGIN' } });
    }
    expect((await list({})).status).toBe(200);
    expect((await list({ origin: server.url })).status).toBe(200);
  });
});

describe('ct mcp (stdio) for an agent', () => {
  it('the local tools\' arguments are described in place too, and an argument they do not take is refused', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ct-mcp-agent-'));
    const agent = new Client({ name: 'stdio-agent', version: '1.0.0' });
    try {
      await agent.connect(new StdioClientTransport({ command: process.execPath, args: [join(repoRoot, 'bin', 'ct.js'), 'mcp', '--root', root], cwd: root, stderr: 'pipe' }));
      const tools = await expectSelfDescribed(agent);
      expect(tools.map((t) => t.name).sort()).toEqual(['explain_decision', 'inspect_bundle', 'policy_impact', 'verify_bundle']);
      const r = (await agent.callTool({ name: 'verify_bundle', arguments: { path: 'a.ctp', trustStore: 't.json', trustedroot: 'r.json' } })) as ToolResult;
      expect(r.isError).toBe(true);
      expect(r.content[0].text).toContain('trustedroot');
    } finally {
      await agent.close();
      rmSync(root, { recursive: true, force: true });
    }
  }, 30_000);
});
