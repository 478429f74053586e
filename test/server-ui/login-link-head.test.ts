/**
 * A one-time sign-in link is used by the browser that opens it, not by whatever checks it first.
 * Express answers HEAD with the GET route, so a HEAD (link checkers, mail and chat scanners ask
 * with one before a person clicks) used the link up and was handed the session cookie: the person
 * then got LOGIN_LINK_INVALID, and the scanner held their session. HEAD, like GET, changes nothing;
 * the Sign in button's POST after them signs in.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { followLoginLink } from '../support/login-link.js';
import type { RunningServer } from '../../server/start.js';

const ADMIN = 'ctk_login_link_head_admin_key_for_tests_0123';

describe('one-time sign-in links and HEAD', () => {
  let server: RunningServer;
  beforeAll(async () => void (server = await testServer({ adminApiKey: ADMIN })), 60_000);
  afterAll(async () => void (await server?.close()));

  it('a HEAD neither uses the link nor sets a session; the sign-in after it works', async () => {
    const minted = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    const { url } = (await minted.json()) as { url: string };
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    expect(head.headers.getSetCookie().filter((c) => c.startsWith('__Host-ct_session='))).toEqual([]);
    expect(head.status).toBe(200);
    const used = await followLoginLink(url);
    expect([used.status, used.headers.get('location')]).toEqual([303, '/']);
    expect(used.headers.getSetCookie().some((c) => c.startsWith('__Host-ct_session='))).toBe(true);
  });
});
