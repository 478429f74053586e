/**
 * Replicas on one PostgreSQL may run different configurations (a rollout, a mistake). What a
 * replica trusts — the bootstrap admin key, dashboard sessions' sign-in issuers, one-time links'
 * minters — is decided by each replica from its own configuration, at every request:
 * - before, each start wrote its configuration into the shared tables, and the last start won for
 *   every replica: one started without CT_ADMIN_API_KEY revoked it for all, an old-configured one
 *   restarted during a rotation brought the old (leaked) key back for all; one with fewer
 *   login.oidc issuers signed the others' people out, and missed sessions an old replica made after;
 * - sessions opened by one-time links survived the removal of the key or issuer that minted them,
 *   and could mint further links forever;
 * - an API key minted by an issuer's sign-in kept its role whatever that issuer's mapping became;
 *   now each replica narrows it (and the keys it minted) by its own mapping, as it does sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { testServer } from '../server/support.js';
import { followLoginLink } from '../support/login-link.js';
import { createSession } from '../../server/ui/sessions.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import type { LoginIssuerConfig, ServerConfig } from '../../server/config.js';
import type { RunningServer } from '../../server/start.js';

const K1 = `ctk_${'a1'.repeat(24)}`;
const K2 = `ctk_${'b2'.repeat(24)}`;
// Configured last (a newer bootstrap key revokes those recorded before it).
const K3 = `ctk_${'c3'.repeat(24)}`;
// Never contacted: no login is started here.
const issuer = (host: string): LoginIssuerConfig => ({ issuer: `https://${host}`, clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'admin' } });
const X = issuer('x.example');
const withRoles = (roles: LoginIssuerConfig['roles']): LoginIssuerConfig => ({ ...X, roles });
const Y = issuer('y.example');

describe('what each replica trusts, from its own configuration', () => {
  let pg: Postgres;
  const running: RunningServer[] = [];
  const start = async (o: Partial<ServerConfig>) => {
    const s = await testServer({ databaseUrl: pg.url, ...o });
    running.push(s);
    return s;
  };
  const stop = async (s: RunningServer) => {
    running.splice(running.indexOf(s), 1);
    await s.close();
  };
  const withKey = async (s: RunningServer, key: string) => (await fetch(`${s.url}/api/v1/session`, { headers: { authorization: `Bearer ${key}` } })).status;
  const withCookie = async (s: RunningServer, id: string) => (await fetch(`${s.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${id}` } })).status;
  const mint = async (s: RunningServer, auth: Record<string, string>) => fetch(`${s.url}/api/v1/login-links`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"role":"admin"}' });
  const open = async (url: string) => {
    const res = await followLoginLink(url);
    return { status: res.status, session: /__Host-ct_session=([A-Za-z0-9_-]{43})/.exec(res.headers.getSetCookie().join('\n'))?.[1] };
  };

  beforeAll(async () => void (pg = await startPostgres()), 60_000);
  afterAll(async () => {
    for (const s of running.splice(0)) await s.close();
    await pg?.stop();
  });

  it('the bootstrap key: a replica without one does not revoke it for the others; an old replica restarted does not bring a rotated key back', async () => {
    const a = await start({ adminApiKey: K1 });
    const b = await start({});
    expect(await withKey(a, K1)).toBe(200);
    expect(await withKey(b, K1)).toBe(401);
    // Rotation: the new key works where configured; the old one is revoked (it may have leaked)...
    const c = await start({ adminApiKey: K2 });
    expect(await withKey(c, K2)).toBe(200);
    expect(await withKey(c, K1)).toBe(401);
    expect(await withKey(b, K2)).toBe(401);
    // ...and an old-configured replica restarted during the rollout neither revives it nor revokes the new one.
    await stop(a);
    const a2 = await start({ adminApiKey: K1 });
    expect(await withKey(a2, K1)).toBe(401);
    expect(await withKey(c, K1)).toBe(401);
    expect(await withKey(c, K2)).toBe(200);
    for (const s of [a2, b, c]) await stop(s);
  }, 60_000);

  it('sessions: a replica with fewer issuers refuses the sessions of those it lacks without ending them on the others, whenever they were made', async () => {
    const a = await start({ login: { oidc: [X, Y] } });
    const before = (await createSession(a.ctx.db, { subject: 'yvonne', name: 'Yvonne', issuer: Y.issuer, role: 'admin' }, 3600_000)).id;
    const b = await start({ login: { oidc: [X] } });
    // Made by the old replica after the new one started.
    const after = (await createSession(a.ctx.db, { subject: 'yann', name: 'Yann', issuer: Y.issuer, role: 'admin' }, 3600_000)).id;
    const onX = (await createSession(a.ctx.db, { subject: 'xavier', name: 'Xavier', issuer: X.issuer, role: 'admin' }, 3600_000)).id;
    for (const id of [before, after]) {
      expect(await withCookie(b, id)).toBe(401);
      expect(await withCookie(a, id)).toBe(200);
    }
    expect(await withCookie(b, onX)).toBe(200);
    for (const s of [a, b]) await stop(s);
  }, 60_000);

  it('one-time links stand only while their minter is trusted, and a link session mints no link', async () => {
    const a = await start({ adminApiKey: K2, login: { oidc: [X, Y] } });
    const b = await start({ login: { oidc: [X] } });
    // Minted with the bootstrap key: opened on a replica configured with it, a session...
    const byKey = ((await (await mint(a, { authorization: `Bearer ${K2}` })).json()) as { url: string }).url;
    const keySession = (await open(byKey)).session!;
    expect(await withCookie(a, keySession)).toBe(200);
    // ...refused where the key is not configured, and a pending link is not redeemed there.
    expect(await withCookie(b, keySession)).toBe(401);
    const pending = ((await (await mint(a, { authorization: `Bearer ${K2}` })).json()) as { url: string }).url;
    expect((await open(pending.replace(a.url, b.url))).status).toBe(401);

    // Minted by a session of issuer Y: refused where Y is not configured.
    const y = await createSession(a.ctx.db, { subject: 'yvonne', name: 'Yvonne', issuer: Y.issuer, role: 'admin' }, 3600_000);
    const byIssuer = await mint(a, { cookie: `__Host-ct_session=${y.id}`, 'x-csrf-token': y.csrf });
    expect(byIssuer.status).toBe(201);
    const issuerSession = (await open(((await byIssuer.json()) as { url: string }).url)).session!;
    expect(await withCookie(a, issuerSession)).toBe(200);
    expect(await withCookie(b, issuerSession)).toBe(401);

    // An admin session opened by a link mints no further link.
    const csrf = ((await (await fetch(`${a.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${keySession}` } })).json()) as { csrfToken: string }).csrfToken;
    const chained = await mint(a, { cookie: `__Host-ct_session=${keySession}`, 'x-csrf-token': csrf });
    expect(chained.status).toBe(403);
    expect(((await chained.json()) as { error: { code: string } }).error.code).toBe('LOGIN_LINK_FORBIDDEN');

    // The key rotated out: its link sessions end on the replica that had it too.
    await stop(a);
    const a2 = await start({ adminApiKey: K1, login: { oidc: [X, Y] } });
    expect(await withCookie(a2, keySession)).toBe(401);
    expect(await withCookie(a2, issuerSession)).toBe(200);
    for (const s of [a2, b]) await stop(s);
  }, 60_000);

  it('an API key minted by an issuer\'s sign-in has, on each replica, what its minter\'s groups give there; so do the keys it mints', async () => {
    const a = await start({ adminApiKey: K3, login: { oidc: [withRoles({ ops: 'admin' })] } });
    const b = await start({ adminApiKey: K3, login: { oidc: [withRoles({ ops: 'operator' })] } });
    const c = await start({ adminApiKey: K3, login: { oidc: [withRoles({ others: 'admin' })] } });
    const mintKey = async (auth: Record<string, string>, name: string) => {
      const res = await fetch(`${a.url}/api/v1/api-keys`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name, role: 'admin' }) });
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string; key: string };
    };
    /** On one replica: an admin route's and a read route's status. */
    const can = async (s: RunningServer, key: string) => {
      const h = { authorization: `Bearer ${key}` };
      return [(await fetch(`${s.url}/api/v1/api-keys`, { headers: h })).status, (await fetch(`${s.url}/api/v1/overview`, { headers: h })).status];
    };
    const x = await createSession(a.ctx.db, { subject: 'xenia', name: 'Xenia', issuer: X.issuer, role: 'admin', groups: ['ops'] }, 3600_000);
    const hers = await mintKey({ cookie: `__Host-ct_session=${x.id}`, 'x-csrf-token': x.csrf }, 'xenias');
    const chained = await mintKey({ authorization: `Bearer ${hers.key}` }, 'minted-by-xenias');
    const plain = await mintKey({ authorization: `Bearer ${K3}` }, 'minted-by-bootstrap');
    for (const k of [hers, chained]) {
      expect(await can(a, k.key)).toEqual([200, 200]);
      expect(await can(b, k.key)).toEqual([403, 200]);
      expect(await can(c, k.key)).toEqual([401, 401]);
    }
    for (const s of [a, b, c]) expect(await can(s, plain.key)).toEqual([200, 200]);
    // Minted by a replica from before groups were kept (NULL): what each replica's mapping still
    // gives anyone, no more (b: operator), and not listed as following groups.
    const old = await createApiKey(a.ctx.db, 'old-replica', 'admin', { ttlMs: 3600_000, mintedBy: `issuer:${X.issuer}` });
    expect([await can(a, old.key), await can(b, old.key)]).toEqual([[200, 200], [403, 200]]);
    const listedOld = ((await (await fetch(`${b.url}/api/v1/api-keys`, { headers: { authorization: `Bearer ${K3}` } })).json()) as { keys: Array<{ id: string; roleNow: string; followsGroups: boolean }> }).keys;
    expect(listedOld.filter((k) => k.id === old.id || k.id === hers.id).map((k) => [k.roleNow, k.followsGroups])).toEqual([['operator', false], ['operator', true]]);
    const states = async (s: RunningServer) => {
      const { keys } = (await (await fetch(`${s.url}/api/v1/api-keys?state=all`, { headers: { authorization: `Bearer ${K3}` } })).json()) as { keys: Array<{ id: string; roleNow: string | null; state: string }> };
      return [hers.id, chained.id, plain.id].map((id) => keys.find((k) => k.id === id)).map((k) => `${k?.state}:${k?.roleNow}`);
    };
    expect(await states(b)).toEqual(['live:operator', 'live:operator', 'live:admin']);
    expect(await states(c)).toEqual(['minter-no-role:null', 'minter-no-role:null', 'live:admin']);
    for (const s of [a, b, c]) await stop(s);
  }, 60_000);
});
