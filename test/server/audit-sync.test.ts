import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';

describe('audit search and sync', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let admin: string;
  let operator: string;
  let viewer: string;
  let auditor: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    operator = (await createApiKey(server.ctx.db, 'op', 'operator')).key;
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    auditor = (await createApiKey(server.ctx.db, 'aud', 'auditor')).key;
  });
  afterAll(() => server.close());
  const call = (method: string, path: string, token: string) => fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

  it('sync is for operators, is audited with who asked, and the audit is for auditors', async () => {
    expect((await call('POST', '/api/v1/sync', viewer)).status).toBe(403);
    const res = await call('POST', '/api/v1/sync', operator);
    expect(res.status).toBe(202);
    expect(((await res.json()) as { queued: boolean }).queued).toBe(false);
    expect((await call('GET', '/api/v1/audit', viewer)).status).toBe(403);
    expect((await call('GET', '/api/v1/audit', operator)).status).toBe(403);
    const body = (await (await call('GET', '/api/v1/audit?kind=api.sync', auditor)).json()) as { entries: Array<{ kind: string; record: { principal: { role: string; id: string } } }> };
    expect(body.entries).toHaveLength(1);
    expect(body.entries[0].record.principal.role).toBe('operator');
    expect(JSON.stringify(body)).not.toContain(operator);
  });

  it('filters, bounds and exports JSON lines', async () => {
    await call('POST', '/api/v1/sync', admin);
    const jsonl = await call('GET', '/api/v1/audit?format=jsonl&limit=1', admin);
    expect(jsonl.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await jsonl.text()).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]).record.principal.role).toBe('admin');
    expect(((await (await call('GET', '/api/v1/audit?q=admin', admin)).json()) as { entries: unknown[] }).entries.length).toBeGreaterThan(0);
    expect(((await (await call('GET', '/api/v1/audit?kind=none', admin)).json()) as { entries: unknown[] }).entries).toHaveLength(0);
    // A limit over the page's most is cut to it (as the deployments list does), not refused.
    const most = await call('GET', '/api/v1/audit?limit=5000', admin);
    expect(most.status).toBe(200);
    const page = ((await (await call('GET', '/api/v1/audit?limit=1000', admin)).json()) as { entries: unknown[] }).entries;
    expect(((await most.json()) as { entries: unknown[] }).entries).toHaveLength(page.length);
    for (const bad of ['limit=0', 'limit=1.5', 'limit=ten', 'kind=DROP%20TABLE', 'since=yesterday', `q=${'x'.repeat(300)}`]) {
      const r = await call('GET', `/api/v1/audit?${bad}`, admin);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    }
  });
});
