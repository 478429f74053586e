/**
 * API keys made through the API (`/api/v1/api-keys`, `ct api-key`): admins only; the key is shown
 * once and works with its role; the list never shows a secret; a key expires, is revoked at once on
 * the server that revoked it, and stops working with whatever minted it (a revoked key, a rotated
 * bootstrap key); a session opened by a sign-in link mints none; at most MAX_LIVE_API_KEYS live.
 * Before, no key but the bootstrap one could be made at all (docs/mcp.md asked for one per agent).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { testServer } from './support.js';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { createApiKey, liveApiKeyCount } from '../../server/auth/api-keys.js';
import { MAX_LIVE_API_KEYS } from '../../server/routes/api-keys.js';
import { searchAudit } from '../../server/routes/audit.js';
import { followLoginLink } from '../support/login-link.js';
import { runCt } from '../support/cli.js';

const ADMIN = `ctk_${'a1'.repeat(24)}`;

describe('API keys through the API', () => {
  let server: RunningServer & { dir: string };
  const call = (method: string, path: string, key: string | null, body?: unknown, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, {
    method, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const roleOf = async (key: string) => {
    const res = await call('GET', '/api/v1/session', key);
    return res.status === 200 ? ((await res.json()) as { role: string }).role : res.status;
  };
  const mint = async (by: string, body: Record<string, unknown>) => {
    const res = await call('POST', '/api/v1/api-keys', by, body);
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, string> & { error?: { code: string } } };
  };

  beforeAll(async () => {
    server = await testServer({ adminApiKey: ADMIN });
  }, 60_000);
  afterAll(async () => server?.close());

  it('an admin makes a key with a role, shown once; it works with that role and no more; the list shows no secret', async () => {
    const made = await mint(ADMIN, { name: 'agent-triage', role: 'operator' });
    expect(made.status).toBe(201);
    expect(made.headers.get('cache-control')).toBe('no-store');
    expect(made.body).toMatchObject({ name: 'agent-triage', role: 'operator', key: expect.stringMatching(/^ctk_[A-Za-z0-9_-]{43}$/), mintedBy: expect.stringMatching(/^key:/) });
    // 90 days unless asked otherwise.
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeGreaterThan(89 * 86_400_000);
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeLessThanOrEqual(90 * 86_400_000);
    expect(await roleOf(made.body.key)).toBe('operator');
    // An operator key makes no key, lists none, revokes none.
    expect((await mint(made.body.key, { name: 'escalate', role: 'admin' })).status).toBe(403);
    expect((await call('GET', '/api/v1/api-keys', made.body.key)).status).toBe(403);
    expect((await call('DELETE', `/api/v1/api-keys/${made.body.id}`, made.body.key)).status).toBe(403);
    expect((await mint('', { name: 'anon', role: 'viewer' })).status).toBe(401);

    const list = (await (await call('GET', '/api/v1/api-keys', ADMIN)).json()) as { keys: Array<Record<string, unknown>> };
    const mine = list.keys.find((k) => k.id === made.body.id);
    expect(mine).toMatchObject({ name: 'agent-triage', role: 'operator', state: 'live', revokedAt: null, bootstrap: false, createdBy: { kind: 'api-key', role: 'admin' } });
    expect(list.keys.some((k) => k.bootstrap === true)).toBe(true);
    const text = JSON.stringify(list);
    expect(text).not.toContain(made.body.key);
    expect(text).not.toMatch(/"hash"|[0-9a-f]{64}/);
    const [audit] = await searchAudit(server.ctx, { kind: 'api-key.created', subject: made.body.id, limit: 5 });
    expect(audit.record).toMatchObject({ name: 'agent-triage', role: 'operator', principal: { kind: 'api-key', role: 'admin' } });
    expect(JSON.stringify(audit)).not.toContain(made.body.key);
  });

  it('refuses what it should not make', async () => {
    for (const body of [
      { name: 'bootstrap-admin', role: 'admin' }, { name: 'Bad Name', role: 'viewer' }, { name: 'x', role: 'root' }, { name: 'x', role: 'constructor' },
      { name: 'x', role: 'viewer', ttlSeconds: 59 }, { name: 'x', role: 'viewer', ttlSeconds: 366 * 86_400 + 1 }, { name: 'x', role: 'viewer', scopes: ['deploy'] }, { role: 'viewer' },
    ]) {
      const r = await mint(ADMIN, body);
      expect([r.status, r.body.error?.code]).toEqual([400, 'BAD_REQUEST']);
    }
  });

  it('a revoked key is refused at once, with every key it minted; revoking again or an unknown id', async () => {
    const a = (await mint(ADMIN, { name: 'parent', role: 'admin' })).body;
    const b = (await mint(a.key, { name: 'child', role: 'admin' })).body;
    const c = (await mint(b.key, { name: 'grandchild', role: 'viewer' })).body;
    expect(c.mintedBy).toBe(`key:${b.id}`);
    // Each has just authenticated (remembered for 5 s): revocation must not wait for that.
    expect([await roleOf(a.key), await roleOf(b.key), await roleOf(c.key)]).toEqual(['admin', 'admin', 'viewer']);
    expect((await call('DELETE', `/api/v1/api-keys/${a.id}`, ADMIN)).status).toBe(204);
    expect([await roleOf(a.key), await roleOf(b.key), await roleOf(c.key)]).toEqual([401, 401, 401]);
    // Revoked with it, not only refused: listed so, and holding no place among the live ones.
    const all = ((await (await call('GET', '/api/v1/api-keys?state=all', ADMIN)).json()) as { keys: Array<{ id: string; state: string }> }).keys;
    expect([a.id, b.id, c.id].map((id) => all.find((k) => k.id === id)?.state)).toEqual(['revoked', 'revoked', 'revoked']);
    const live = ((await (await call('GET', '/api/v1/api-keys?state=live', ADMIN)).json()) as { keys: Array<{ id: string }> }).keys;
    expect(live.some((k) => [a.id, b.id, c.id].includes(k.id))).toBe(false);
    expect((await call('GET', '/api/v1/api-keys?state=dead', ADMIN)).status).toBe(400);
    expect((await call('GET', '/api/v1/api-keys?limit=0x10', ADMIN)).status).toBe(400);
    expect((await call('DELETE', `/api/v1/api-keys/${a.id}`, ADMIN)).status).toBe(204);
    expect((await call('DELETE', '/api/v1/api-keys/00000000-0000-4000-8000-000000000000', ADMIN)).status).toBe(404);
    expect((await call('DELETE', '/api/v1/api-keys/..%2F..%2Fetc', ADMIN)).status).toBe(404);
    expect(await searchAudit(server.ctx, { kind: 'api-key.revoked', subject: a.id, limit: 5 })).toEqual([expect.objectContaining({ record: expect.objectContaining({ mintedKeysRevoked: 2 }) })]);
  });

  it('no key is handed out that would be refused: a chain of keys minting keys ends at 8', async () => {
    let by = ADMIN;
    const made: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const r = await mint(by, { name: `chain-${i}`, role: 'admin' });
      expect(r.status).toBe(201);
      made.push(r.body.key);
      by = r.body.key;
    }
    expect(await roleOf(made[7])).toBe('admin');
    const ninth = await mint(by, { name: 'chain-9', role: 'viewer' });
    expect([ninth.status, ninth.body.error?.code]).toEqual([403, 'API_KEY_FORBIDDEN']);
    expect(await liveApiKeyCount(server.ctx.db)).toBeGreaterThan(0);
    const ids = ((await (await call('GET', '/api/v1/api-keys?state=live', ADMIN)).json()) as { keys: Array<{ id: string; name: string }> }).keys.filter((k) => k.name === 'chain-1');
    expect((await call('DELETE', `/api/v1/api-keys/${ids[0].id}`, ADMIN)).status).toBe(204);
    for (const k of made) expect(await roleOf(k)).toBe(401);
  });

  it('an expired key is refused, even while remembered', async () => {
    const k = (await mint(ADMIN, { name: 'short', role: 'viewer', ttlSeconds: 60 })).body;
    await server.ctx.db.run('UPDATE api_keys SET expires_at = ? WHERE id = ?', [Date.now() + 400, k.id]);
    expect(await roleOf(k.key)).toBe('viewer');
    await new Promise((r) => setTimeout(r, 500));
    expect(await roleOf(k.key)).toBe(401);
  });

  it('a key minted by a key ends no later than its minter', async () => {
    const parent = (await mint(ADMIN, { name: 'parent', role: 'admin', ttlSeconds: 3_600 })).body;
    const child = (await mint(parent.key, { name: 'child', role: 'viewer', ttlSeconds: 90 * 86_400 })).body;
    expect(Date.parse(child.expiresAt)).toBeLessThanOrEqual(Date.parse(parent.expiresAt));
    // A key minted before keys were capped so (its end later than its minter's): what it mints
    // ends with the chain's first end, when it would be refused anyway.
    await server.ctx.db.run('UPDATE api_keys SET expires_at = ? WHERE id = ?', [Date.now() + 90 * 86_400_000, child.id]);
    // The list says when such a key stops being accepted: its minter's end, not its own later one.
    const listed = (await (await call('GET', '/api/v1/api-keys?state=all', ADMIN)).json()) as { keys: { id: string; expiresAt: string; endsAt: string | null }[] };
    const row = (id: string) => listed.keys.find((k) => k.id === id)!;
    expect(Date.parse(row(child.id).expiresAt)).toBeGreaterThan(Date.parse(parent.expiresAt));
    expect([row(child.id).endsAt, row(parent.id).endsAt]).toEqual([parent.expiresAt, parent.expiresAt]);
    const grand = (await mint(parent.key, { name: 'old-child', role: 'admin', ttlSeconds: 90 * 86_400 })).body;
    await server.ctx.db.run('UPDATE api_keys SET expires_at = ? WHERE id = ?', [Date.now() + 90 * 86_400_000, grand.id]);
    const great = (await mint(grand.key, { name: 'great', role: 'viewer', ttlSeconds: 90 * 86_400 })).body;
    expect(Date.parse(great.expiresAt)).toBeLessThanOrEqual(Date.parse(parent.expiresAt));
    // A key minted by the configured bootstrap key (no end) keeps the lifetime it asked for.
    const free = (await mint(ADMIN, { name: 'free', role: 'viewer', ttlSeconds: 90 * 86_400 })).body;
    expect(Date.parse(free.expiresAt)).toBeGreaterThan(Date.now() + 89 * 86_400_000);
  });

  it('a session opened by a sign-in link makes no key, even an admin one', async () => {
    const { url } = (await (await call('POST', '/api/v1/login-links', ADMIN, { role: 'admin', name: 'link user' })).json()) as { url: string };
    const opened = await followLoginLink(url, { origin: server.url });
    const cookie = opened.headers.getSetCookie().find((c) => c.startsWith('__Host-ct_session='))!.split(';')[0];
    const session = (await (await fetch(`${server.url}/api/v1/session`, { headers: { cookie } })).json()) as { role: string; csrfToken: string };
    expect(session.role).toBe('admin');
    const res = await call('POST', '/api/v1/api-keys', null, { name: 'laundered', role: 'admin' }, { cookie, 'x-csrf-token': session.csrfToken });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('API_KEY_FORBIDDEN');
    // The same session may list them (it is an admin), so the refusal is the minting rule, not the role.
    expect((await fetch(`${server.url}/api/v1/api-keys`, { headers: { cookie } })).status).toBe(200);
  });

  it(`at most ${MAX_LIVE_API_KEYS} live keys; a revoked or expired one frees its place`, async () => {
    const ids: string[] = [];
    for (let i = await liveApiKeyCount(server.ctx.db); i < MAX_LIVE_API_KEYS; i++) ids.push((await createApiKey(server.ctx.db, `filler-${i}`, 'viewer')).id);
    const full = await mint(ADMIN, { name: 'one-more', role: 'viewer' });
    expect([full.status, full.body.error?.code]).toEqual([409, 'API_KEY_LIMIT']);
    await server.ctx.db.run('UPDATE api_keys SET expires_at = ? WHERE id = ?', [Date.now() - 1, ids[0]]);
    expect((await mint(ADMIN, { name: 'one-more', role: 'viewer' })).status).toBe(201);
    await server.ctx.db.run('UPDATE api_keys SET revoked_at = ? WHERE name LIKE ?', [Date.now(), 'filler-%']);
  }, 60_000);

  it('ct api-key create, list and revoke', async () => {
    const env = { CT_TOKEN: ADMIN };
    const made = await runCt(['api-key', 'create', '--server', server.url, '--name', 'ci-release', '--role', 'operator', '--expires-in', '30d'], { env });
    expect(made.stderr).toMatch(/^API key [0-9a-f-]{36} \(ci-release, operator\) expires \d{4}-.*shown only now\n$/);
    expect(made.code).toBe(0);
    const key = made.stdout.trim();
    expect(await roleOf(key)).toBe('operator');
    const id = /API key ([0-9a-f-]{36})/.exec(made.stderr)![1];
    const listed = await runCt(['api-key', 'list', '--server', server.url], { env });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^ID +NAME +ROLE +STATE +FOLLOWS GROUPS +EXPIRES +MINTED BY\\n(.*\\n)*${id} +ci-release +operator +live +no +\\S+ +key:`, 'm'));
    expect(listed.stdout).not.toContain(key);
    expect(listed.stdout).not.toMatch(/ revoked /);
    const revoked = await runCt(['api-key', 'revoke', id, '--server', server.url], { env });
    expect([revoked.code, revoked.stderr]).toEqual([0, `API key ${id} revoked\n`]);
    expect(await roleOf(key)).toBe(401);
    // Revoked keys are listed only with --all.
    expect((await runCt(['api-key', 'list', '--server', server.url], { env })).stdout).not.toContain(id);
    expect((await runCt(['api-key', 'list', '--all', '--server', server.url], { env })).stdout).toMatch(new RegExp(`^${id} +ci-release +operator +revoked `, 'm'));
    // Refusals carry the server's code; a credential never crosses plain http to another machine.
    const refused = await runCt(['api-key', 'create', '--server', server.url, '--name', 'x'], { env: { CT_TOKEN: key } });
    expect([refused.code, refused.stderr]).toEqual([12, 'error[SERVER_REFUSED]: the deploy server refused: UNAUTHENTICATED: invalid API key\n']);
    const plain = await runCt(['api-key', 'list', '--server', 'http://deploy.example.com'], { env });
    expect(plain.stderr).toContain('error[USAGE]: --server must use https');
    const noToken = await runCt(['api-key', 'list', '--server', server.url], { env: { CT_TOKEN: '' } });
    expect(noToken.stderr).toContain('error[USAGE]: --server needs a credential in $CT_TOKEN');
  }, 60_000);
});

describe('keys minted by a rotated bootstrap key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ct-api-key-rotation-'));
  const OLD = `ctk_${'d2'.repeat(24)}`;
  const NEW = `ctk_${'e3'.repeat(24)}`;
  const start = (adminApiKey: string) => startServer(loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, adminApiKey }), { log: pino({ level: 'silent' }) });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stop working when the bootstrap key that minted them is rotated out (a leak must not outlive it)', async () => {
    let server = await start(OLD);
    let key: string;
    try {
      const res = await fetch(`${server.url}/api/v1/api-keys`, { method: 'POST', headers: { authorization: `Bearer ${OLD}`, 'content-type': 'application/json' }, body: '{"name":"made-by-old","role":"admin"}' });
      key = ((await res.json()) as { key: string }).key;
      expect((await fetch(`${server.url}/api/v1/session`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    } finally {
      await server.close();
    }
    server = await start(NEW);
    try {
      expect((await fetch(`${server.url}/api/v1/session`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
    } finally {
      await server.close();
    }
  }, 60_000);
});
