import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { testServer } from './support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { buildApp } from '../../server/app.js';
import { OPENAPI } from '../../server/openapi.js';
import { createApiKey } from '../../server/auth/api-keys.js';

type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };

function routesOf(stack: Layer[], out = new Set<string>()): Set<string> {
  for (const l of stack) {
    if (l.route) for (const m of Object.keys(l.route.methods)) out.add(`${m.toUpperCase()} ${l.route.path.replace(/:(\w+)/g, '{$1}')}`);
    else if (l.handle?.stack) routesOf(l.handle.stack, out);
  }
  return out;
}

describe('deploy server API', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let jwks: Server;
  let issuer: string;
  let signToken: (claims: Record<string, unknown>, aud?: string) => Promise<string>;
  let admin: string;
  let viewer: string;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    signToken = (claims, aud = 'cerro-torre') =>
      new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuer).setAudience(aud).setIssuedAt().setExpirationTime('5m').setSubject(String(claims.sub ?? 'repo:acme/app:ref:refs/heads/main')).sign(privateKey);
    server = await testServer(
      { oidc: [{ issuer, audience: 'cerro-torre', jwksUri: `${issuer}/jwks`, role: 'operator', claims: { repository: 'acme/app', ref: '/refs/heads/(main|release-.*)/' } }] },
      { extend: (ctx) => deployPipeline(ctx) },
    );
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
  });
  afterAll(async () => {
    await server.close();
    jwks.close();
  });

  const call = (method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('documents exactly the routes it serves (OpenAPI 3.1)', async () => {
    const doc = (await (await call('GET', '/openapi.json')).json()) as typeof OPENAPI;
    expect(doc.openapi).toBe('3.1.0');
    const documented = new Set<string>();
    for (const [p, item] of Object.entries(doc.paths)) for (const m of Object.keys(item)) documented.add(`${m.toUpperCase()} ${p}`);
    const app = buildApp(server.ctx, (await deployPipeline(server.ctx)).routers ?? []);
    const served = routesOf((app as unknown as { router: { stack: Layer[] } }).router.stack);
    // The channel is a WebSocket upgrade, not an express route.
    served.add('GET /api/v1/hosts/channel');
    expect([...served].sort()).toEqual([...documented].sort());
  });

  it('answers errors in Svalinn shape and validates bodies against the schemas', async () => {
    const res = await call('POST', '/api/v1/deployments', admin, { environment: 'prod', app: 'hello', bundle: 'registry/app:latest' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; id: string; message: string; details: { errors: unknown[] } } };
    expect(body.error.code).toBe('BAD_REQUEST');
    expect(body.error.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.error.details.errors.length).toBeGreaterThan(0);
    expect((await call('POST', '/api/v1/deployments', admin, '{"environment":')).status).toBe(400);
    expect((await call('POST', '/api/v1/deployments', admin, { environment: 'prod', app: 'hello', bundle: `r.io/a@sha256:${'a'.repeat(64)}`, extra: 1 })).status).toBe(400);
  });

  it('lists the deployments of one image digest (?imageDigest=), a malformed digest is 400', async () => {
    const d = (i: number) => `sha256:${String(i).padStart(64, '0')}`;
    for (let i = 0; i < 3; i++) {
      await server.ctx.db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, image_digest, status, created_at, updated_at) VALUES (?, 'byimage', 'byimage', ?, 'r.example/a:1', ?, 'succeeded', ?, ?)`, [`byimage-${i}`, `c${i}`, d(i % 2), 1000 + i, 1000 + i]);
    }
    const get = (q: string) => call('GET', `/api/v1/deployments?${q}`, viewer);
    const r = await get(`imageDigest=${d(0)}`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { deployments: { id: string }[] }).deployments.map((x) => x.id)).toEqual(['byimage-2', 'byimage-0']);
    const bad = await get('imageDigest=sha256:abc');
    expect(bad.status).toBe(400);
    await server.ctx.db.run(`DELETE FROM deployments WHERE app = 'byimage'`);
  });

  it('enforces roles: no credentials 401, viewer cannot deploy 403, admin can', async () => {
    const ok = { environment: 'prod', app: 'hello', bundle: `127.0.0.1:5000/acme/hello@sha256:${'a'.repeat(64)}` };
    expect((await call('POST', '/api/v1/deployments', undefined, ok)).status).toBe(401);
    expect((await call('POST', '/api/v1/deployments', 'ctk_forged', ok)).status).toBe(401);
    expect((await call('POST', '/api/v1/deployments', viewer, ok)).status).toBe(403);
    expect((await call('GET', '/api/v1/deployments', viewer)).status).toBe(200);
    const created = await call('POST', '/api/v1/deployments', admin, ok);
    expect(created.status).toBe(202);
    // With the CI job's commit, a retried request is the same deploy; without, a new one.
    const withCommit = { ...ok, commit: 'f'.repeat(40) };
    const first = (await (await call('POST', '/api/v1/deployments', admin, withCommit)).json()) as { id: string };
    const again = await call('POST', '/api/v1/deployments', admin, withCommit);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(first.id);
    expect((await call('POST', '/api/v1/deployments', admin, ok)).status).toBe(202);
  });

  it('accepts CI OIDC tokens that satisfy the claim rules and nothing else', async () => {
    const good = await signToken({ repository: 'acme/app', ref: 'refs/heads/main' });
    expect((await call('GET', '/api/v1/deployments', good)).status).toBe(200);
    const wrongRepo = await signToken({ repository: 'evil-acme/app', ref: 'refs/heads/main' });
    const r1 = await call('GET', '/api/v1/deployments', wrongRepo);
    expect(r1.status).toBe(401);
    expect(((await r1.json()) as { error: { message: string } }).error.message).toContain('evil-acme/app');
    const unanchored = await signToken({ repository: 'acme/app', ref: 'refs/heads/main-evil' });
    expect((await call('GET', '/api/v1/deployments', unanchored)).status).toBe(401);
    const wrongAud = await signToken({ repository: 'acme/app', ref: 'refs/heads/main' }, 'sigstore');
    expect((await call('GET', '/api/v1/deployments', wrongAud)).status).toBe(401);
    // An operator may deploy but not mint enrolment tokens.
    expect((await call('POST', '/api/v1/hosts/tokens', good, {})).status).toBe(403);
  });

  it('enrols a host once per one-time token', async () => {
    const { token } = (await (await call('POST', '/api/v1/hosts/tokens', admin, { labels: { env: 'prod' } })).json()) as { token: string };
    const { generateKeyPairSync, sign } = await import('node:crypto');
    const keys = generateKeyPairSync('ed25519');
    const pub = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const first = await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'host-a', publicKey: pub });
    expect(first.status).toBe(201);
    // An enrolled host may download only bundles assigned to it.
    const { hostId } = (await first.json()) as { hostId: string };
    const path = `/api/v1/hosts/bundles/sha256:${'c'.repeat(64)}`;
    const time = String(Date.now());
    const sig = sign(null, Buffer.from(`GET\n${path}\n${time}`), keys.privateKey).toString('base64');
    const dl = await fetch(`${server.url}${path}`, { headers: { 'x-ct-host': hostId, 'x-ct-time': time, 'x-ct-signature': sig } });
    expect(dl.status).toBe(403);
    const forged = await fetch(`${server.url}${path}`, { headers: { 'x-ct-host': hostId, 'x-ct-time': time, 'x-ct-signature': sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } });
    expect(forged.status).toBe(401);
    const replay = await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'host-b', publicKey: pub });
    expect(replay.status).toBe(401);
    const hosts = (await (await call('GET', '/api/v1/hosts', viewer)).json()) as { hosts: { name: string; labels: Record<string, string>; connected: boolean }[] };
    expect(hosts.hosts).toEqual([expect.objectContaining({ name: 'host-a', labels: { env: 'prod' }, connected: false })]);
  });

  it('answers deeply nested JSON with 400 JSON_INVALID before any recursive code (#13 finding 7)', async () => {
    const { token } = (await (await call('POST', '/api/v1/hosts/tokens', admin, { labels: {} })).json()) as { token: string };
    const { generateKeyPairSync } = await import('node:crypto');
    const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const deep = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    const r = await call('POST', '/api/v1/hosts/enroll', undefined, `{"token":${JSON.stringify(token)},"name":"deep-host","publicKey":"${pub}","facts":${deep}}`);
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { code: string; details: { limit: number } } };
    expect(body.error.code).toBe('JSON_INVALID');
    expect(body.error.details.limit).toBe(64);
    // The token was not spent: a sane enrolment with it still works.
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'deep-host', publicKey: pub })).status).toBe(201);
  });
});
