/**
 * Opening a one-time sign-in link (GET) used it: chat unfurlers (Slack, Teams) and mail link
 * scanners fetch every URL they are shown, so the link was spent, and the session cookie handed to
 * the scanner, before the person clicked it. Now the GET shows a page whose Sign in button POSTs
 * the token; only that POST uses the link. The page reads nothing (a valid and a forged link get
 * the same page), keeps the token from third parties (no-referrer, no-store, no external
 * resource, the dashboard's CSP), and the POST must come from a page of this server: another
 * site's page may not post its own link to sign a visitor in as the attacker (login CSRF).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { testServer } from '../server/support.js';
import { launchBrowser, newContext } from '../support/browser.js';
import type { RunningServer } from '../../server/start.js';
import { hashSecret } from '../../server/ui/sessions.js';

const ADMIN = 'ctk_login_link_confirm_admin_key_for_tests_01';

describe('a one-time sign-in link opens a page; its button signs in', () => {
  let server: RunningServer;
  let browser: Browser;
  let attacker: Server;
  let attackerUrl = '';
  // The page another site would serve: it posts a link of its own to this server, at once.
  let attackerPage = '';

  const mint = async () => ((await (await fetch(`${server.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { url: string }).url;
  /** Whether the link is still stored (unused). */
  const stands = async (url: string) => (await server.ctx.db.query('SELECT 1 FROM ui_login_links WHERE token_hash = ?', [hashSecret(tokenOf(url))])).length === 1;
  const post = async (token: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}/auth/link`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: `token=${token}` });
    return { status: res.status, location: res.headers.get('location'), code: /data-code>([A-Z_]+)</.exec(await res.text())?.[1] ?? '', session: res.headers.getSetCookie().some((c) => c.startsWith('ct_session=')) };
  };
  const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;

  beforeAll(async () => {
    server = await testServer({ adminApiKey: ADMIN });
    browser = await launchBrowser();
    attacker = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end(attackerPage));
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => attacker?.close(r));
    await server?.close();
  });

  it('GET shows the page and changes nothing: no session, the link still there, however often it is fetched', async () => {
    const url = await mint();
    expect(await stands(url)).toBe(true);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie()).toEqual([]);
      const html = await res.text();
      expect(html).toContain(`<form method="post" action="/auth/link"><input type="hidden" name="token" value="${tokenOf(url)}"><button type="submit">Sign in</button></form>`);
    }
    expect(await stands(url)).toBe(true);
    expect(await post(tokenOf(url))).toEqual({ status: 303, location: '/', code: '', session: true });
    expect(await stands(url)).toBe(false);
    // Used: the POST again refuses with the page it always showed.
    expect(await post(tokenOf(url))).toEqual({ status: 401, location: null, code: 'LOGIN_LINK_INVALID', session: false });
  });

  it('the page keeps the token from third parties and says nothing about the link', async () => {
    const url = await mint();
    const res = await fetch(url);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self'");
    const html = await res.text();
    // Nothing but this server's own paths: no resource elsewhere is told the page's URL.
    expect([...html.matchAll(/(?:href|src|action)="([^"]*)"/g)].map((m) => m[1])).toEqual(['/ui/app.css', '/auth/link']);
    // A forged link gets the same page (the database is not read): no oracle for who holds a URL.
    const forged = 'B'.repeat(43);
    expect(await (await fetch(url.replace(tokenOf(url), forged))).text()).toBe(html.replace(tokenOf(url), forged));
    // A token of the wrong shape is refused at once, with the error page and the same headers.
    const bad = await fetch(`${server.url}/auth/link?token=x`);
    expect([bad.status, bad.headers.get('referrer-policy'), bad.headers.get('cache-control')]).toEqual([401, 'no-referrer', 'no-store']);
  });

  it('a POST sent by another site\'s page is refused before the link is looked up; the link stays usable', async () => {
    const url = await mint();
    const token = tokenOf(url);
    for (const headers of <Record<string, string>[]>[{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'http://evil.example' }, { origin: 'null' }]) {
      expect([headers, await post(token, headers)]).toEqual([headers, { status: 403, location: null, code: 'LOGIN_LINK_CROSS_SITE', session: false }]);
    }
    expect(await stands(url)).toBe(true);
    // Its own page (what the button sends), and a client with neither header (curl), sign in.
    expect(await post(token, { 'sec-fetch-site': 'same-origin', origin: server.url })).toMatchObject({ status: 303, session: true });
    expect(await post(tokenOf(await mint()), { origin: server.url })).toMatchObject({ status: 303, session: true });
  });

  it('the body is bounded: more than a sign-in form is refused before anything is looked up', async () => {
    const url = await mint();
    const res = await fetch(`${server.url}/auth/link`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${tokenOf(url)}&pad=${'x'.repeat(2048)}` });
    expect(res.status).toBe(413);
    const many = await fetch(`${server.url}/auth/link`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${tokenOf(url)}&a=1&b=2&c=3&d=4` });
    expect(many.status).toBe(413);
    expect(await stands(url)).toBe(true);
  });

  it('in Chromium: another site\'s auto-posting page is refused; the link opened and its button clicked signs in', async () => {
    const url = await mint();
    const context = await newContext(browser);
    const page = await context.newPage();
    attackerPage = `<!doctype html><form method="post" action="${server.url}/auth/link"><input type="hidden" name="token" value="${tokenOf(url)}"></form><script>document.forms[0].submit()</script>`;
    await page.goto(attackerUrl);
    await page.waitForURL(`${server.url}/auth/link`);
    expect(await page.locator('[data-code]').textContent()).toBe('LOGIN_LINK_CROSS_SITE');
    expect((await context.cookies(server.url)).filter((c) => c.name === 'ct_session')).toEqual([]);
    expect(await stands(url)).toBe(true);

    await page.goto(url);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${server.url}/`);
    await page.locator('.who').waitFor();
    expect(await page.evaluate(async () => ((await (await fetch('/api/v1/session')).json()) as { kind: string }).kind)).toBe('session');
    expect(await stands(url)).toBe(false);
    await context.close();
  }, 60_000);
});
