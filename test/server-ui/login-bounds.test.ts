/**
 * Anyone may start a dashboard sign-in, unauthenticated, and each start is a row kept for ten
 * minutes: logins in progress are capped (503 LOGIN_BUSY with Retry-After, nothing stored), and
 * the redirect URI stored with one is never built from an arbitrary Host header.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { testServer } from '../server/support.js';
import { startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
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

  it('refuses starts past maxPendingLogins with 503 LOGIN_BUSY and Retry-After, storing nothing, until logins expire', async () => {
    for (let i = 0; i < 3; i++) expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(await rows()).toBe(3);
    // Started together, as a flood would: none of them gets in past the cap.
    const refused = await Promise.all(Array.from({ length: 8 }, () => get(`${server.url}/auth/login?issuer=0&returnTo=/${'x'.repeat(400)}`)));
    for (const r of refused) {
      expect([r.status, codeOf(r.body)]).toEqual([503, 'LOGIN_BUSY']);
      expect(r.headers['set-cookie']).toBeUndefined();
      const retry = Number(r.headers['retry-after']);
      expect(Number.isInteger(retry) && retry >= 1 && retry <= 600).toBe(true);
    }
    expect(await rows()).toBe(3);
    // The count (and the sweep of expired logins) seeks an index rather than scanning the table.
    const plan = await server.ctx.db.query<{ detail: string }>('EXPLAIN QUERY PLAN SELECT COUNT(*) FROM ui_logins WHERE expires_at >= ?', [Date.now()]);
    expect(plan.map((p) => p.detail).join('\n')).toContain('USING COVERING INDEX ui_logins_expires');
    // Expired logins are not counted: starting works again without waiting for a sweep.
    await server.ctx.db.run('UPDATE ui_logins SET expires_at = ?', [Date.now() - 1]);
    expect((await get(`${server.url}/auth/login?issuer=0`)).status).toBe(302);
    expect(Number((await server.ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ui_logins WHERE expires_at >= ?', [Date.now()]))[0].n)).toBe(1);
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
