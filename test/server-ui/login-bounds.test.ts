/**
 * Anyone may start a dashboard sign-in, unauthenticated, and each start is a row kept for ten
 * minutes: logins in progress are capped, a start past the cap evicting the oldest (a flood costs
 * the logins older than it, never a sign-in started after it; 503 LOGIN_BUSY only when room cannot
 * be made), and the redirect URI stored with one is never built from an arbitrary Host header.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { testServer } from '../server/support.js';
import { beginHttpLogin, endHttpLogin, nextMillisecond, startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
import type { RunningServer } from '../../server/start.js';

/** GET with a Host header of our choosing (fetch does not let one be set). */
function get(url: string, host?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host === undefined ? {} : { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const codeOf = (body: string) => /data-code>([A-Z_]+)</.exec(body)?.[1] ?? '';

describe('dashboard sign-in starts are bounded', () => {
  let provider: LoginProvider;
  let server: RunningServer;
  const rows = async () => Number((await server.ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ui_logins'))[0].n);

  beforeAll(async () => {
    provider = await startLoginProvider({ alice: { name: 'Alice', groups: ['ops'] } });
    server = await testServer({
      login: { oidc: [{ issuer: provider.issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'operator' } }], allowedAddresses: ['127.0.0.1'], maxPendingLogins: 3 },
    });
    provider.configure([`${server.url}/auth/callback`]);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await provider?.close();
  });

  beforeEach(async () => void (await server.ctx.db.run('DELETE FROM ui_logins')));

  it('past maxPendingLogins a start evicts the oldest logins: after a flood a sign-in completes, and the table stays at the cap', async () => {
    const early = await beginHttpLogin(provider, server.url, 'alice');
    for (let i = 0; i < 2; i++) expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(await rows()).toBe(3);
    // A flood, started together: every start is taken (a cookie, the issuer), none is refused.
    const flood = await Promise.all(Array.from({ length: 8 }, () => get(`${server.url}/auth/login?issuer=0&returnTo=/${'x'.repeat(400)}`)));
    for (const r of flood) {
      expect(r.status).toBe(302);
      expect(String(r.headers['set-cookie'])).toMatch(/^__Host-ct_login=/);
    }
    expect(await rows()).toBe(3);
    // A person who starts after the flood signs in, even with starts after theirs (fewer than the
    // cap) made while they are at the issuer. (Logins are ordered by the millisecond they started.)
    await nextMillisecond();
    const later = await beginHttpLogin(provider, server.url, 'alice');
    for (let i = 0; i < 2; i++) expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(await rows()).toBe(3);
    expect(await endHttpLogin(later)).toEqual({ status: 302, code: '', session: true });
    // The login started before the flood was evicted: its callback is refused as unknown.
    expect(await endHttpLogin(early)).toMatchObject({ status: 401, code: 'LOGIN_STATE_INVALID', session: false });
    // So is one with the cap's worth of starts after it: that is what a login can be outrun by.
    const outrun = await beginHttpLogin(provider, server.url, 'alice');
    await nextMillisecond();
    for (let i = 0; i < 3; i++) expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(await endHttpLogin(outrun)).toMatchObject({ status: 401, code: 'LOGIN_STATE_INVALID' });
    expect(await rows()).toBe(3);
    // Expired logins not swept yet are the oldest, so the first evicted.
    await server.ctx.db.run('UPDATE ui_logins SET expires_at = ?', [Date.now() - 1]);
    expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(await rows()).toBe(3);
    expect(Number((await server.ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ui_logins WHERE expires_at >= ?', [Date.now()]))[0].n)).toBe(1);
    // The eviction walks the expiry index rather than sorting the table, and deletes by primary key.
    const plan = await server.ctx.db.query<{ detail: string }>('EXPLAIN QUERY PLAN DELETE FROM ui_logins WHERE state_hash IN (SELECT state_hash FROM ui_logins ORDER BY expires_at DESC LIMIT 1000 OFFSET 3)');
    const detail = plan.map((p) => p.detail).join('\n');
    expect(detail).toContain('SCAN ui_logins USING INDEX ui_logins_expires');
    expect(detail).toContain('(state_hash=?)');
    expect(detail).not.toContain('TEMP B-TREE');
  }, 60_000);

  it('answers 503 LOGIN_BUSY with Retry-After, storing nothing, only when room cannot be made', async () => {
    for (let i = 0; i < 2; i++) expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    // Every delete from the table fails from here on.
    await server.ctx.db.run("CREATE TRIGGER ui_logins_no_delete BEFORE DELETE ON ui_logins BEGIN SELECT RAISE(ABORT, 'eviction refused'); END");
    try {
      // Up to the cap nothing is evicted, so nothing fails.
      expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
      expect(await rows()).toBe(3);
      const r = await get(`${server.url}/auth/login?issuer=0`);
      expect([r.status, codeOf(r.body)]).toEqual([503, 'LOGIN_BUSY']);
      expect(r.body).not.toContain('eviction refused');
      expect(r.headers['set-cookie']).toBeUndefined();
      const retry = Number(r.headers['retry-after']);
      expect(Number.isInteger(retry) && retry >= 1 && retry <= 600).toBe(true);
      // The start's own row went with the failed eviction.
      expect(await rows()).toBe(3);
    } finally {
      await server.ctx.db.run('DROP TRIGGER ui_logins_no_delete');
    }
    expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(await rows()).toBe(3);
  });

  it('never stores a redirect URI built from a malformed or oversized Host header', async () => {
    const port = new URL(server.url).port;
    const huge = `${'a'.repeat(10_240)}.example`;
    for (const host of [huge, `${'a'.repeat(60)}.`.repeat(5) + `example:${port}`, `127.0.0.1:${port}/${'p'.repeat(100)}`, 'x y', '127.0.0.1:1"><script>', '127.0.0.1:99999', '127.0.0.1:65536', '127.0.0.1:0', 'ct_server:', '_:-1']) {
      const r = await get(`${server.url}/auth/login?issuer=0`, host);
      expect([r.status, codeOf(r.body)]).toEqual([400, 'LOGIN_HOST_INVALID']);
    }
    expect(await rows()).toBe(0);
    // A plain host:port still works: the flow of a server reached by its address, without publicUrl.
    const ok = await get(`${server.url}/auth/login?issuer=0`, `127.0.0.1:${port}`);
    expect(ok.status).toBe(302);
    const stored = await server.ctx.db.query<{ redirect_uri: string }>('SELECT redirect_uri FROM ui_logins');
    expect(stored.map((s) => s.redirect_uri)).toEqual([`http://127.0.0.1:${port}/auth/callback`]);
    // Docker Compose service names hold underscores; any port from 1 to 65535. (Three: the cap.)
    await server.ctx.db.run('DELETE FROM ui_logins');
    for (const host of [`ct_server:${port}`, 'deploy_ct_server_1.internal:1', 'ct-server:65535']) expect((await get(`${server.url}/auth/login?issuer=0`, host)).status).toBe(302);
    const compose = await server.ctx.db.query<{ redirect_uri: string }>('SELECT redirect_uri FROM ui_logins ORDER BY redirect_uri');
    expect(compose.map((s) => s.redirect_uri)).toEqual(['http://ct-server:65535/auth/callback', `http://ct_server:${port}/auth/callback`, 'http://deploy_ct_server_1.internal:1/auth/callback']);
  });

  it('takes the redirect URI from publicUrl, whatever the Host', async () => {
    const other = await testServer({
      publicUrl: 'https://ct.example.test/',
      login: { oidc: [{ issuer: provider.issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'operator' } }], allowedAddresses: ['127.0.0.1'] },
    });
    try {
      const r = await get(`${other.url}/auth/login?issuer=0`, `${'a'.repeat(10_240)}.example`);
      expect(r.status).toBe(302);
      expect(new URL(String(r.headers.location)).searchParams.get('redirect_uri')).toBe('https://ct.example.test/auth/callback');
      const stored = await other.ctx.db.query<{ redirect_uri: string }>('SELECT redirect_uri FROM ui_logins');
      expect(stored.map((s) => s.redirect_uri)).toEqual(['https://ct.example.test/auth/callback']);
    } finally {
      await other.close();
    }
  }, 30_000);
});
