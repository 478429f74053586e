/**
 * One-time dashboard sign-in links (what `ct quickstart` prints): minted by an admin, opened in
 * Chromium they show a Sign in button, which lands on the dashboard signed in with the link's role;
 * a link works once, expires, and a forged one signs nobody in. Minting needs the admin
 * permission; both steps are audited.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { testServer } from '../server/support.js';
import { launchBrowser, newContext } from '../support/browser.js';
import { followLoginLink } from '../support/login-link.js';
import type { RunningServer } from '../../server/start.js';
import { searchAudit } from '../../server/routes/audit.js';

const ADMIN = 'ctk_login_link_admin_key_for_tests_0123456789';

describe('one-time dashboard sign-in links', () => {
  let server: RunningServer & { dir: string };
  let browser: Browser;
  const mint = (body: unknown, key: string | null = ADMIN) => fetch(`${server.url}/api/v1/login-links`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body),
  });
  const open = async (url: string) => {
    const res = await followLoginLink(url);
    return { status: res.status, location: res.headers.get('location'), code: /data-code>([A-Z_]+)</.exec(await res.text())?.[1] ?? '', cookie: res.headers.getSetCookie().find((c) => c.startsWith('__Host-ct_session=')) ?? null };
  };

  beforeAll(async () => {
    server = await testServer({ adminApiKey: ADMIN });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('opens the dashboard signed in with the link\'s role', async () => {
    const res = await mint({ role: 'operator', name: 'Quick Start <b>User</b>' });
    expect(res.status).toBe(201);
    const { url, role, expiresAt } = (await res.json()) as { url: string; role: string; expiresAt: string };
    expect(url).toMatch(new RegExp(`^${server.url}/auth/link\\?token=[A-Za-z0-9_-]{43}$`));
    expect(role).toBe('operator');
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(url);
    // The link opens a page; the button signs in.
    expect(page.url()).toBe(url);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${server.url}/`);
    const who = page.locator('.who');
    await who.waitFor();
    // The name is text, never markup.
    expect(await who.textContent()).toContain('Quick Start <b>User</b>');
    const session = await page.evaluate(async () => (await fetch('/api/v1/session')).json()) as { kind: string; role: string; csrfToken: string | null };
    expect(session).toMatchObject({ kind: 'session', role: 'operator' });
    expect(session.csrfToken).toBeTruthy();
    await context.close();

    // Used once: the same link again signs nobody in.
    expect(await open(url)).toMatchObject({ status: 401, code: 'LOGIN_LINK_INVALID', cookie: null });
    for (const kind of ['login-link.created', 'login-link.used']) {
      // (GET /api/v1/audit is mounted with the deploy pipeline; the same query underneath.)
      expect(await searchAudit(server.ctx, { kind, limit: 10 })).toEqual([expect.objectContaining({ subject: 'Quick Start <b>User</b>', record: expect.objectContaining({ role: 'operator' }) })]);
    }
  }, 60_000);

  it('a forged, malformed or expired link signs nobody in', async () => {
    expect(await open(`${server.url}/auth/link?token=${'A'.repeat(43)}`)).toMatchObject({ status: 401, code: 'LOGIN_LINK_INVALID', cookie: null });
    expect(await open(`${server.url}/auth/link?token=../../etc`)).toMatchObject({ status: 401, code: 'LOGIN_LINK_INVALID', cookie: null });
    expect(await open(`${server.url}/auth/link`)).toMatchObject({ status: 401, code: 'LOGIN_LINK_INVALID', cookie: null });
    // Posted without the page: no token, a malformed one, a forged one.
    const post = async (body: string) => {
      const res = await fetch(`${server.url}/auth/link`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      return { status: res.status, code: /data-code>([A-Z_]+)</.exec(await res.text())?.[1] ?? '', cookie: res.headers.getSetCookie().find((c) => c.startsWith('__Host-ct_session=')) ?? null };
    };
    for (const body of ['', 'token=../../etc', `token=${'A'.repeat(43)}`]) expect(await post(body)).toMatchObject({ status: 401, code: 'LOGIN_LINK_INVALID', cookie: null });
    const { url } = (await (await mint({})).json()) as { url: string };
    await server.ctx.db.run('UPDATE ui_login_links SET expires_at = ?', [Date.now() - 1]);
    expect(await open(url)).toMatchObject({ status: 401, code: 'LOGIN_LINK_INVALID', cookie: null });
    // A fresh one still works (and defaults to the operator role).
    const fresh = (await (await mint({})).json()) as { url: string; role: string };
    expect(fresh.role).toBe('operator');
    const ok = await open(fresh.url);
    expect(ok).toMatchObject({ status: 303, location: '/' });
    expect(ok.cookie).toMatch(/^__Host-ct_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Lax/);
  }, 30_000);

  it('minting needs an admin: no credentials 401, a session without admin 403, a bad body 400', async () => {
    expect((await mint({}, null)).status).toBe(401);
    expect((await mint({ role: 'root' })).status).toBe(400);
    expect((await mint({ name: 'x'.repeat(101) })).status).toBe(400);
    expect((await mint({ extra: 1 })).status).toBe(400);
    const { url } = (await (await mint({ role: 'viewer' })).json()) as { url: string };
    const cookie = (await open(url)).cookie!.split(';')[0];
    const session = (await (await fetch(`${server.url}/api/v1/session`, { headers: { cookie } })).json()) as { csrfToken: string; role: string };
    expect(session.role).toBe('viewer');
    const res = await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { cookie, 'x-csrf-token': session.csrfToken, 'content-type': 'application/json' }, body: '{"role":"admin"}' });
    expect(res.status).toBe(403);
  }, 30_000);
});
