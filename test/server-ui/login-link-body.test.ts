/**
 * The body of POST /api/v1/login-links is optional (role and name have defaults): sent without one
 * (no JSON content type, so no parser ran), the request was validated as `{}` but handled as
 * `undefined`, and answered 500 INTERNAL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import type { RunningServer } from '../../server/start.js';

const ADMIN = 'ctk_login_link_body_admin_key_for_tests_0123';

describe('optional request bodies', () => {
  let server: RunningServer;
  beforeAll(async () => void (server = await testServer({ adminApiKey: ADMIN })), 60_000);
  afterAll(async () => void (await server?.close()));

  it('a sign-in link minted without a body takes the defaults', async () => {
    const res = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ role: 'operator', name: 'dashboard user', url: expect.stringContaining('/auth/link?token=') });
  });

  it('a body of another content type is refused (415), not taken for the defaults', async () => {
    // curl -d sends application/x-www-form-urlencoded: the JSON parser skips it, and it was
    // handled as `{}`, so an admin asking for a viewer link got an operator link.
    const before = Number((await server.ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ui_login_links'))[0].n);
    for (const [type, body] of [['application/x-www-form-urlencoded', '{"role":"viewer"}'], ['text/plain', '{"role":"viewer"}']]) {
      const res = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': type }, body });
      expect([type, res.status]).toEqual([type, 415]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(Number((await server.ctx.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ui_login_links'))[0].n)).toBe(before);
    // The same body as JSON is taken as asked.
    const ok = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"role":"viewer"}' });
    expect(((await ok.json()) as { role: string }).role).toBe('viewer');
  });

  it('a body that is not JSON is still refused', async () => {
    const res = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"role":' });
    expect(res.status).toBe(400);
  });
});
