/**
 * An API key minted by a dashboard sign-in follows its minter's groups, as the sessions and links
 * that sign-in opens already did. Before, the key kept the role it was given for its whole life (up
 * to 366 days): an admin whose group was removed from the mapping, or given a lesser role, kept
 * admin through every key they had minted. Now the key keeps the groups the sign-in's mapping
 * named, and every use narrows its role to what they give an admin under the answering server's
 * mapping; none left: refused, listed as `minter-no-role`. Keys minted by such a key follow it, and
 * so do the sign-in links it minted (used before or after); keys minted by a plain API key (the
 * bootstrap key here) keep their role.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Role } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { createSession } from '../../server/ui/sessions.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { beginHttpLogin, startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
import { runCt } from '../support/cli.js';
import { followLoginLink } from '../support/login-link.js';

const BOOTSTRAP = `ctk_${'c7'.repeat(24)}`;

describe('API keys minted by an issuer\'s sign-in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ct-api-key-role-'));
  let provider: LoginProvider;
  let server: RunningServer | undefined;
  const start = async (roles: Record<string, Role>) => {
    await server?.close();
    const oidc = [{ issuer: provider.issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', roles }];
    server = await startServer(loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, adminApiKey: BOOTSTRAP, login: { oidc, allowedAddresses: ['127.0.0.1'] } }), { log: pino({ level: 'silent' }) });
    return server;
  };
  const get = (path: string, key: string) => fetch(`${server!.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  /** What a key may do at the running server: its role, an admin route's and a viewer route's status. */
  const standing = async (key: string) => {
    const session = await get('/api/v1/session', key);
    const role = session.status === 200 ? ((await session.json()) as { role: string }).role : session.status;
    return [role, (await get('/api/v1/api-keys', key)).status, (await get('/api/v1/overview', key)).status];
  };
  const mint = async (auth: Record<string, string>, name: string) => {
    const res = await fetch(`${server!.url}/api/v1/api-keys`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name, role: 'admin' }) });
    return { status: res.status, body: (await res.json()) as { id: string; key: string; error?: { code: string } } };
  };
  /** A one-time admin link minted with `key`, its URL at the running server's path (a restart moves the port). */
  const link = async (key: string) => {
    const res = await fetch(`${server!.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"role":"admin","name":"handed"}' });
    expect(res.status).toBe(201);
    const url = new URL(((await res.json()) as { url: string }).url);
    return `${url.pathname}${url.search}`;
  };
  /** Opens a link at the running server: the session cookie, or the status when refused. */
  const open = async (path: string) => {
    const res = await followLoginLink(`${server!.url}${path}`);
    const id = /__Host-ct_session=([A-Za-z0-9_-]{43})/.exec(res.headers.getSetCookie().join('\n'))?.[1];
    return id ? `__Host-ct_session=${id}` : res.status;
  };
  /** A session's role at the running server, or the status when refused. */
  const sessionRole = async (cookie: string) => {
    const res = await fetch(`${server!.url}/api/v1/session`, { headers: { cookie } });
    return res.status === 200 ? ((await res.json()) as { role: string }).role : res.status;
  };
  /** The list as the bootstrap key sees it (its own keys never narrow). */
  const listed = async (id: string) => {
    const { keys } = (await (await get('/api/v1/api-keys?state=all', BOOTSTRAP)).json()) as { keys: Array<{ id: string; role: string; roleNow: string | null; state: string; followsGroups: boolean }> };
    const k = keys.find((x) => x.id === id)!;
    return [k.role, k.roleNow, k.state, k.followsGroups];
  };

  beforeAll(async () => {
    provider = await startLoginProvider({ olga: { name: 'Olga', groups: ['ops', 'readers', 'unmapped'] } });
  });
  afterAll(async () => {
    await server?.close();
    await provider?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('narrowing the mapping narrows the key and the keys and links it minted; removing the group refuses them; a plain key\'s keys are unchanged', async () => {
    const s = await start({ ops: 'admin', readers: 'viewer' });
    provider.configure([`${s.url}/auth/callback`]);
    const { callback, loginCookie } = await beginHttpLogin(provider, s.url, 'olga');
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: `__Host-ct_login=${loginCookie}` } });
    const cookie = `__Host-ct_session=${/__Host-ct_session=([A-Za-z0-9_-]{43})/.exec(done.headers.getSetCookie().join('\n'))?.[1] ?? ''}`;
    const { csrfToken } = (await (await fetch(`${s.url}/api/v1/session`, { headers: { cookie } })).json()) as { csrfToken: string };

    const olgas = await mint({ cookie, 'x-csrf-token': csrfToken }, 'olgas-script');
    expect(olgas.status).toBe(201);
    // The sign-in's mapped groups are kept with the key (not the unmapped one).
    const [row] = await s.ctx.db.query<{ minter_groups: string }>('SELECT minter_groups FROM api_keys WHERE id = ?', [olgas.body.id]);
    expect(JSON.parse(row.minter_groups).sort()).toEqual(['ops', 'readers']);
    const chained = (await mint({ authorization: `Bearer ${olgas.body.key}` }, 'minted-by-olgas')).body;
    const plain = (await mint({ authorization: `Bearer ${BOOTSTRAP}` }, 'minted-by-bootstrap')).body;
    for (const k of [olgas.body, chained, plain]) expect(await standing(k.key)).toEqual(['admin', 200, 200]);
    // Links minted with Olga's key: one used now, one later.
    const linked = (await open(await link(olgas.body.key))) as string;
    const unused = await link(olgas.body.key);
    expect(await sessionRole(linked)).toBe('admin');

    // ops is given operator: Olga's key, and the key it minted, are operators at once (a restart
    // is how a mapping changes; the token cache is the process's and starts empty).
    await start({ ops: 'operator', readers: 'viewer' });
    expect(await standing(olgas.body.key)).toEqual(['operator', 403, 200]);
    expect(await standing(chained.key)).toEqual(['operator', 403, 200]);
    expect(await standing(plain.key)).toEqual(['admin', 200, 200]);
    expect(await listed(olgas.body.id)).toEqual(['admin', 'operator', 'live', true]);
    expect(await listed(plain.id)).toEqual(['admin', 'admin', 'live', false]);
    const later = (await open(unused)) as string;
    expect([await sessionRole(linked), await sessionRole(later)]).toEqual(['operator', 'operator']);
    // Recorded so when opened, not only narrowed when read: the session row and the audit entry.
    const [opened] = await server!.ctx.db.query<{ role: string }>('SELECT role FROM ui_sessions WHERE subject = ? ORDER BY created_at DESC LIMIT 1', ['link:handed']);
    const [used] = await server!.ctx.db.query<{ record: string }>('SELECT record FROM audit WHERE kind = ? ORDER BY time DESC LIMIT 1', ['login-link.used']);
    expect([opened.role, (JSON.parse(used.record) as { role: string }).role]).toEqual(['operator', 'operator']);
    const cli = await runCt(['api-key', 'list', '--server', server!.url], { env: { CT_TOKEN: BOOTSTRAP } });
    expect(cli.stdout).toMatch(new RegExp(`^${olgas.body.id} +olgas-script +operator \\(was admin\\) +live +yes `, 'm'));
    expect(cli.stdout).toMatch(new RegExp(`^${plain.id} +minted-by-bootstrap +admin +live +no `, 'm'));

    // ops removed, readers left: viewers. Then neither: refused, listed so, not live.
    await start({ readers: 'viewer' });
    expect(await standing(olgas.body.key)).toEqual(['viewer', 403, 200]);
    await start({ others: 'admin' });
    for (const k of [olgas.body, chained]) {
      const res = await get('/api/v1/overview', k.key);
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([401, 'UNAUTHENTICATED']);
      expect(await listed(k.id)).toEqual(['admin', null, 'minter-no-role', false]);
    }
    expect([await sessionRole(linked), await sessionRole(later)]).toEqual([401, 401]);
    const live = ((await (await get('/api/v1/api-keys?state=live', BOOTSTRAP)).json()) as { keys: Array<{ id: string }> }).keys.map((k) => k.id);
    expect(live).toContain(plain.id);
    expect(live).not.toContain(olgas.body.id);
    expect(await standing(plain.key)).toEqual(['admin', 200, 200]);
  }, 60_000);

  it('a key minted by a sign-in ends no later than that session, whatever lifetime was asked', async () => {
    const s = await start({ ops: 'admin' });
    const hour = await createSession(s.ctx.db, { subject: 'olga', name: 'Olga', issuer: provider.issuer, role: 'admin', groups: ['ops'] }, 3600_000);
    const res = await fetch(`${s.url}/api/v1/api-keys`, {
      method: 'POST', headers: { cookie: `__Host-ct_session=${hour.id}`, 'x-csrf-token': hour.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ninety-days', role: 'admin', ttlSeconds: 90 * 86_400 }),
    });
    expect(res.status).toBe(201);
    const k = (await res.json()) as { id: string; expiresAt: string };
    expect(Date.parse(k.expiresAt)).toBeLessThanOrEqual(hour.expiresAt);
    const { keys } = (await (await get('/api/v1/api-keys', BOOTSTRAP)).json()) as { keys: Array<{ id: string; expiresAt: string }> };
    expect(keys.find((x) => x.id === k.id)?.expiresAt).toBe(k.expiresAt);
    // A key (not a sign-in) still gets what it asks.
    const byKey = await fetch(`${s.url}/api/v1/api-keys`, { method: 'POST', headers: { authorization: `Bearer ${BOOTSTRAP}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'by-key', role: 'viewer', ttlSeconds: 90 * 86_400 }) });
    expect(Date.parse(((await byKey.json()) as { expiresAt: string }).expiresAt)).toBeGreaterThan(Date.now() + 89 * 86_400_000);
  }, 60_000);

  it('a key a replica from before minted with no groups has at most what the mapping gives anyone', async () => {
    let s = await start({ ops: 'admin', audit: 'auditor' });
    // As an old replica inserts it: minted by the issuer's sign-in, minter_groups NULL.
    const admin = await createApiKey(s.ctx.db, 'old-replica-admin', 'admin', { ttlMs: 86_400_000, mintedBy: `issuer:${provider.issuer}` });
    const auditor = await createApiKey(s.ctx.db, 'old-replica-auditor', 'auditor', { ttlMs: 86_400_000, mintedBy: `issuer:${provider.issuer}` });
    expect(await listed(admin.id)).toEqual(['admin', 'admin', 'live', false]);
    s = await start({ ops: 'operator', audit: 'auditor' });
    expect(await standing(admin.key)).toEqual(['operator', 403, 200]);
    // Its own role goes in: an auditor key under {operator, auditor} stays auditor (not viewer).
    expect((await standing(auditor.key))[0]).toBe('auditor');
    await start({ readers: 'viewer' });
    expect(await standing(admin.key)).toEqual(['viewer', 403, 200]);
    expect(await listed(admin.id)).toEqual(['admin', 'viewer', 'live', false]);
  }, 60_000);

  it('tampered kept groups fail closed: refused, not kept', async () => {
    const s = await start({ ops: 'admin' });
    const k = await createApiKey(s.ctx.db, 'tampered', 'admin', { ttlMs: 86_400_000, mintedBy: `issuer:${provider.issuer}`, minterGroups: ['ops'] });
    expect(await listed(k.id)).toEqual(['admin', 'admin', 'live', true]);
    for (const v of ['{"ops":1}', '["__proto__","constructor","hasOwnProperty"]', 'not json']) {
      await s.ctx.db.run('UPDATE api_keys SET minter_groups = ? WHERE id = ?', [v, k.id]);
      expect(await listed(k.id)).toEqual(['admin', null, 'minter-no-role', false]);
    }
  }, 60_000);

  it('a session from before sign-ins kept their groups mints no key (it would have none to follow)', async () => {
    const s = await start({ ops: 'admin' });
    const old = await createSession(s.ctx.db, { subject: 'old', name: 'Old', issuer: provider.issuer, role: 'admin' }, 3600_000);
    const res = await mint({ cookie: `__Host-ct_session=${old.id}`, 'x-csrf-token': old.csrf }, 'from-old-session');
    expect([res.status, res.body.error?.code]).toEqual([403, 'API_KEY_FORBIDDEN']);
  }, 60_000);
});
