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

  it('a body that is not JSON is still refused', async () => {
    const res = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"role":' });
    expect(res.status).toBe(400);
  });
});
