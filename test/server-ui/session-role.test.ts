/**
 * A dashboard session's role follows the server's group → role mapping (login.oidc roles) as it
 * narrows. The role was fixed at sign-in: an operator who took a group's deploy or admin right
 * away (and restarted) still saw its people keep it until their sessions expired, up to
 * sessionTtlSeconds later. Now a session keeps the groups its issuer's mapping named, and every
 * read re-derives the role from them under the answering server's mapping, never wider than at
 * sign-in. Sessions from before groups were recorded are narrowed to what the mapping still gives
 * anyone; link sessions keep the role their minter chose.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type LoginIssuerConfig, type Role } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { createSession } from '../../server/ui/sessions.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { currentRole, mappedGroups, narrowerRole, roleForGroups, sessionRole } from '../../server/auth/role-mapping.js';
import { beginHttpLogin, startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
import { followLoginLink } from '../support/login-link.js';

describe('narrowerRole and sessionRole', () => {
  it('never grant more than at sign-in, nor more than the mapping gives now', () => {
    expect(narrowerRole('admin', 'operator')).toBe('operator');
    expect(narrowerRole('viewer', 'admin')).toBe('viewer');
    // Neither holds the other: what both grant.
    expect(narrowerRole('operator', 'auditor')).toBe('viewer');
    const m = { ops: 'operator', audit: 'auditor', all: 'admin' } as const;
    expect(sessionRole([m], 'admin', ['ops', 'audit'])).toBe('operator');
    expect(sessionRole([m], 'operator', ['all'])).toBe('operator');
    expect(sessionRole([m], 'admin', ['gone'])).toBeUndefined();
    expect(sessionRole([m], 'admin', [])).toBeUndefined();
    // Groups unknown (a session from before): what the mapping still gives anyone.
    expect(sessionRole([{ ops: 'viewer' }], 'admin', null)).toBe('viewer');
    expect(sessionRole([m], 'auditor', null)).toBe('auditor');
    // Two entries for one issuer: the most capable of their answers.
    expect(sessionRole([{ ops: 'viewer' }, { ops: 'operator' }], 'admin', ['ops'])).toBe('operator');
    // Names of Object.prototype are not groups.
    expect(sessionRole([m], 'admin', ['constructor', '__proto__', 'toString'])).toBeUndefined();
    // A role this server does not know (a row written by another version, or tampered with) grants
    // nothing, and narrows to nothing: refused, not viewer.
    for (const odd of ['root', 'constructor', '__proto__'] as unknown as Role[]) {
      expect([narrowerRole(odd, 'admin'), narrowerRole('admin', odd), sessionRole([m], odd, ['all'])]).toEqual([undefined, undefined, undefined]);
    }
    // Every mapped group is kept, wherever in the token it came: the role re-derived from them is
    // the one signed in with (keeping the first 100 demoted someone whose admin group came later).
    const many = Object.fromEntries([...Array.from({ length: 150 }, (_v, i) => [`team-${i}`, 'viewer']), ['admins', 'admin']]) as Record<string, Role>;
    const token = [...Object.keys(many).filter((g) => g !== 'admins'), 'admins'];
    expect(roleForGroups(many, token)).toBe('admin');
    expect(mappedGroups(many, token)).toHaveLength(151);
    expect(sessionRole([many], 'admin', mappedGroups(many, token))).toBe('admin');
    // A link's session: minted by an issuer's admin, no more than the minter's groups give now;
    // minted by a key (or CI, or the terminal), the role it was given.
    const issuers = new Map([['https://idp', [m]]]);
    expect(currentRole(issuers, 'login-link:issuer:https://idp', 'admin', ['ops'])).toBe('operator');
    expect(currentRole(issuers, 'login-link:issuer:https://idp', 'viewer', ['all'])).toBe('viewer');
    expect(currentRole(issuers, 'login-link:issuer:https://idp', 'admin', ['gone'])).toBeUndefined();
    expect(currentRole(issuers, 'login-link:issuer:https://other', 'admin', ['all'])).toBeUndefined();
    expect(currentRole(issuers, 'login-link:key:k1', 'admin', null)).toBe('admin');
    // ...never more than what minted it has now (a key narrowed by the sign-in that minted it).
    expect(currentRole(issuers, 'login-link:key:k1', 'admin', null, 'operator')).toBe('operator');
    expect(currentRole(issuers, 'login-link:key:k1', 'viewer', null, 'admin')).toBe('viewer');
  });
});

describe('a session\'s role after its issuer\'s mapping narrows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ct-session-role-'));
  let provider: LoginProvider;
  let server: RunningServer | undefined;
  const issuer = (roles: Record<string, Role>): LoginIssuerConfig => ({ issuer: provider.issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', roles });
  const start = async (roles: Record<string, Role>) => {
    await server?.close();
    server = await startServer(loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, login: { oidc: [issuer(roles)], allowedAddresses: ['127.0.0.1'] } }), { log: pino({ level: 'silent' }) });
    return server;
  };
  /** The role the answering server gives the session now, or its HTTP status when refused. */
  const roleOf = async (id: string) => {
    const res = await fetch(`${server!.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${id}` } });
    return res.status === 200 ? ((await res.json()) as { role: string }).role : res.status;
  };

  /** Signs `login` in at the running server: the session cookie's value. */
  const signIn = async (login: string) => {
    provider.configure([`${server!.url}/auth/callback`]);
    const { callback, loginCookie } = await beginHttpLogin(provider, server!.url, login);
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: `__Host-ct_login=${loginCookie}` } });
    return /__Host-ct_session=([A-Za-z0-9_-]{43})/.exec(done.headers.getSetCookie().join('\n'))?.[1] ?? '';
  };
  /** A link's URL at the running server (a restart listens on another port). */
  const here = (url: string) => `${server!.url}${new URL(url).pathname}${new URL(url).search}`;
  /** Uses a link at the running server: the session cookie's value, or the status when refused. */
  const use = async (url: string) => {
    const res = await followLoginLink(here(url));
    return /__Host-ct_session=([A-Za-z0-9_-]{43})/.exec(res.headers.getSetCookie().join('\n'))?.[1] ?? res.status;
  };

  beforeAll(async () => {
    provider = await startLoginProvider({ olga: { name: 'Olga', groups: ['ops', 'readers', 'unmapped'] }, oleg: { name: 'Oleg', groups: ['ops'] } });
  });
  afterAll(async () => {
    await server?.close();
    await provider?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a sign-in records its mapped groups; narrowing their roles narrows the session at once, removing them refuses it', async () => {
    const s = await start({ ops: 'admin', readers: 'viewer' });
    provider.configure([`${s.url}/auth/callback`]);
    const { callback, loginCookie } = await beginHttpLogin(provider, s.url, 'olga');
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: `__Host-ct_login=${loginCookie}` } });
    const olga = /__Host-ct_session=([A-Za-z0-9_-]{43})/.exec(done.headers.getSetCookie().join('\n'))?.[1] ?? '';
    expect(await roleOf(olga)).toBe('admin');
    // Only the groups the mapping names are kept.
    const [row] = await s.ctx.db.query<{ mapped_groups: string }>('SELECT mapped_groups FROM ui_sessions');
    expect(JSON.parse(row.mapped_groups).sort()).toEqual(['ops', 'readers']);

    // Made before groups were recorded, and by a link: the other two kinds of session.
    const old = (await createSession(s.ctx.db, { subject: 'old', name: 'Old', issuer: provider.issuer, role: 'admin' }, 3600_000)).id;
    const key = await createApiKey(s.ctx.db, 'admin', 'admin');
    const link = (await createSession(s.ctx.db, { subject: 'link:l', name: 'l', issuer: `login-link:key:${key.id}`, role: 'admin' }, 3600_000)).id;

    // ops loses admin: Olga is an operator now (and the API refuses her admin calls).
    await start({ ops: 'operator', readers: 'viewer', admins: 'admin' });
    expect(await roleOf(olga)).toBe('operator');
    const cookie = `__Host-ct_session=${olga}`;
    const csrf = ((await (await fetch(`${server!.url}/api/v1/session`, { headers: { cookie } })).json()) as { csrfToken: string }).csrfToken;
    const mint = await fetch(`${server!.url}/api/v1/login-links`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: '{}' });
    expect(mint.status).toBe(403);
    // Someone is still mapped to admin: the old session, groups unknown, may keep it.
    expect(await roleOf(old)).toBe('admin');
    expect(await roleOf(link)).toBe('admin');

    // Widened again: not taken before the next sign-in (her groups are as the issuer said then).
    await start({ ops: 'admin', readers: 'viewer' });
    expect(await roleOf(olga)).toBe('admin');
    await start({ ops: 'auditor', readers: 'viewer' });
    // Admin at sign-in, auditor now: auditor (readers' viewer is less).
    expect(await roleOf(olga)).toBe('auditor');

    // ops removed: readers is left; then neither: refused, as a sign-in would be (LOGIN_NO_ROLE).
    await start({ readers: 'viewer' });
    expect(await roleOf(olga)).toBe('viewer');
    expect(await roleOf(old)).toBe('viewer');
    await start({ others: 'admin' });
    expect(await roleOf(olga)).toBe(401);
    // The link session's role is its minter's choice, not the issuer's mapping.
    expect(await roleOf(link)).toBe('admin');
  }, 60_000);

  it('a link minted by an issuer\'s admin follows its minter\'s groups: narrowed with them, refused when none is left', async () => {
    await start({ ops: 'admin' });
    const oleg = await signIn('oleg');
    expect(await roleOf(oleg)).toBe('admin');
    const cookie = `__Host-ct_session=${oleg}`;
    const csrf = ((await (await fetch(`${server!.url}/api/v1/session`, { headers: { cookie } })).json()) as { csrfToken: string }).csrfToken;
    const mint = async () => {
      const res = await fetch(`${server!.url}/api/v1/login-links`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: '{"role":"admin","name":"handed"}' });
      expect(res.status).toBe(201);
      return ((await res.json()) as { url: string }).url;
    };
    const [used, later, last] = [await mint(), await mint(), await mint()];
    const link = await use(used);
    expect(await roleOf(link as string)).toBe('admin');
    // The link and its session keep who minted it and the groups that made them an admin.
    const [row] = await server!.ctx.db.query<{ minter_subject: string; mapped_groups: string }>('SELECT minter_subject, mapped_groups FROM ui_sessions WHERE subject = ?', ['link:handed']);
    expect([row.minter_subject, JSON.parse(row.mapped_groups)]).toEqual(['oleg', ['ops']]);

    // ops is given viewer: Oleg is a viewer, and so is everything his links hand out, used or not.
    await start({ ops: 'viewer' });
    expect(await roleOf(oleg)).toBe('viewer');
    expect(await roleOf(link as string)).toBe('viewer');
    const second = await use(later);
    expect(await roleOf(second as string)).toBe('viewer');

    // ops removed: Oleg has no role, nor have his links' sessions; an unused link of his is refused.
    await start({ others: 'admin' });
    expect([await roleOf(oleg), await roleOf(link as string), await roleOf(second as string)]).toEqual([401, 401, 401]);
    expect(await use(last)).toBe(401);
  }, 60_000);
});
