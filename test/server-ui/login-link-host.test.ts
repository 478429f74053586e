/**
 * The URL of a one-time sign-in link names this server by the request's Host (without publicUrl).
 * A Host header is the client's to write: unchecked, `evil.example/?x=` made
 * `http://evil.example/?x=/auth/link?token=…`, a link whose token is delivered to another site by
 * whoever opens it. It is held to the rule of the sign-in redirect URI, and no link is minted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { testServer } from '../server/support.js';
import type { RunningServer } from '../../server/start.js';

const ADMIN = 'ctk_login_link_host_admin_key_for_tests_0123';

/** POST with a Host header of our choosing (fetch does not let one be set). */
function mint(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v1/login-links`, { method: 'POST', headers: { host, authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ role: 'viewer', name: 'someone' }));
  });
}

describe('one-time sign-in link URL and the Host header', () => {
  let server: RunningServer;
  const links = async () => Number((await server.ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ui_login_links'))[0].n);

  beforeAll(async () => void (server = await testServer({ adminApiKey: ADMIN })), 60_000);
  afterAll(async () => void (await server?.close()));

  it('builds the URL from a plain host[:port]', async () => {
    const r = await mint(server.url, 'ct-server.example:8080');
    expect(r.status).toBe(201);
    expect((JSON.parse(r.body) as { url: string }).url).toMatch(/^http:\/\/ct-server\.example:8080\/auth\/link\?token=[A-Za-z0-9_-]{43}$/);
  });

  it.each(['evil.example/?x=', 'evil.example#', 'evil.example\\@good', `${'a'.repeat(300)}.example`])('refuses Host %j: 400 LOGIN_HOST_INVALID, no link minted', async (host) => {
    const before = await links();
    const r = await mint(server.url, host);
    expect(r.body).not.toContain('/auth/link?token=');
    expect(r.status).toBe(400);
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe('LOGIN_HOST_INVALID');
    expect(await links()).toBe(before);
  });
});
