/**
 * State-changing API calls are on record with who made them: API deploys, enrolment tokens,
 * enrolments (named by the token's id, never the token) and policy reloads. And a host-name clash
 * does not spend the one-time enrolment token.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { testServer } from './support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';

type Entry = { kind: string; subject: string | null; record: Record<string, unknown> & { principal: { kind: string; id: string; role: string | null } | null } };

describe('audit of API deploys, enrolments and policy reloads', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let admin: string;
  let adminId: string;
  let operator: string;
  let operatorId: string;
  let auditor: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    ({ key: admin, id: adminId } = await keyOf('admin', 'admin'));
    ({ key: operator, id: operatorId } = await keyOf('ci-deployer', 'operator'));
    auditor = (await createApiKey(server.ctx.db, 'aud', 'auditor')).key;
  });
  afterAll(() => server.close());

  /** An API key and the id audit records name it by (the principal's id is the key's id). */
  const keyOf = async (name: string, role: 'admin' | 'operator') => {
    const { key, id } = await createApiKey(server.ctx.db, name, role);
    return { key, id };
  };
  const call = (method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const audit = async (kind: string): Promise<Entry[]> => {
    const r = await call('GET', `/api/v1/audit?kind=${kind}`, auditor);
    expect(r.status).toBe(200);
    return ((await r.json()) as { entries: Entry[] }).entries;
  };
  const publicKey = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

  it('records an API deploy with its principal, on the audit log and on the deployment', async () => {
    const res = await call('POST', '/api/v1/deployments', operator, { environment: 'prod', app: 'hello', bundle: `127.0.0.1:5000/acme/hello@sha256:${'a'.repeat(64)}` });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const [entry] = await audit('api.deploy');
    expect(entry.subject).toBe(id);
    expect(entry.record.principal).toEqual({ kind: 'api-key', id: operatorId, role: 'operator' });
    expect(entry.record).toMatchObject({ deployment: id, created: true, environment: 'prod', app: 'hello' });
    const d = (await (await call('GET', `/api/v1/deployments/${id}`, operator)).json()) as { createdBy: unknown };
    expect(d.createdBy).toEqual({ kind: 'api-key', id: operatorId, role: 'operator' });
    const list = (await (await call('GET', '/api/v1/deployments?app=hello', operator)).json()) as { deployments: { id: string; createdBy: unknown }[] };
    expect(list.deployments.find((x) => x.id === id)?.createdBy).toEqual({ kind: 'api-key', id: operatorId, role: 'operator' });
  });

  it('records who minted an enrolment token and which token enrolled which host, never the token', async () => {
    const minted = await call('POST', '/api/v1/hosts/tokens', admin, { labels: { env: 'prod' } });
    expect(minted.status).toBe(201);
    const { token } = (await minted.json()) as { token: string };
    const [created] = await audit('enrollment-token.created');
    expect(created.record.principal).toEqual({ kind: 'api-key', id: adminId, role: 'admin' });
    const tokenId = String(created.record.tokenId);
    expect(tokenId).toMatch(/^[0-9a-f]{16}$/);
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'audited-host', publicKey: publicKey() })).status).toBe(201);
    const [enrolled] = await audit('host.enrolled');
    expect(enrolled.subject).toBe('audited-host');
    expect(enrolled.record).toMatchObject({ host: 'audited-host', tokenId });
    expect(enrolled.record.principal).toEqual({ kind: 'enrollment-token', id: tokenId, role: null });
    const all = await (await call('GET', '/api/v1/audit?limit=1000', auditor)).text();
    expect(all).not.toContain(token);
    expect(all).not.toContain(token.slice(4));
  });

  it('records a policy reload with its principal', async () => {
    const r = await call('POST', '/api/v1/policies/reload', admin);
    expect([200, 422]).toContain(r.status);
    const [entry] = await audit('api.policies.reload');
    expect(entry.record.principal).toEqual({ kind: 'api-key', id: adminId, role: 'admin' });
    expect(entry.record.ok).toBe(r.status === 200);
  });

  it('a name already enrolled answers 409 and leaves the token usable for another name', async () => {
    const mint = async () => ((await (await call('POST', '/api/v1/hosts/tokens', admin, { labels: {} })).json()) as { token: string }).token;
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token: await mint(), name: 'taken-host', publicKey: publicKey() })).status).toBe(201);
    const token = await mint();
    const clash = await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'taken-host', publicKey: publicKey() });
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'free-host', publicKey: publicKey() })).status).toBe(201);
    // Spent now: it enrols nothing more.
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'third-host', publicKey: publicKey() })).status).toBe(401);
    // Without a valid token, a taken name is not disclosed: 401, not 409.
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token: 'cte_unknown', name: 'taken-host', publicKey: publicKey() })).status).toBe(401);
  });
});
