/**
 * Opening a one-time sign-in link (GET) used it: chat unfurlers (Slack, Teams) and mail link
 * scanners fetch every URL they are shown, so the link was spent, and the session cookie handed to
 * the scanner, before the person clicked it. Now the GET shows a page whose Sign in button POSTs
 * the token; only that POST uses the link. The page reads nothing (a valid and a forged link get
 * the same page), keeps the token from third parties (a same-origin referrer policy, no-store, no external
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
    return { status: res.status, location: res.headers.get('location'), code: /data-code>([A-Z_]+)</.exec(await res.text())?.[1] ?? '', session: res.headers.getSetCookie().some((c) => c.startsWith('__Host-ct_session=')) };
  };
  const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;

  beforeAll(async () => {
    server = await testServer({ adminApiKey: ADMIN });
    // ct.test: a name Chromium does not take for a secure context, so it sends no Sec-Fetch-* there,
    // as browsers without Fetch Metadata (Safari before 16.4) or a proxy stripping them.
    browser = await launchBrowser(['--host-resolver-rules=MAP ct.test 127.0.0.1']);
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
    // same-origin, not no-referrer: the button's POST must carry this server's Origin (below).
    expect(res.headers.get('referrer-policy')).toBe('same-origin');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('content-security-policy')).toContain("form-action 'self'");
    const html = await res.text();
    // Nothing but this server's own paths: no resource elsewhere is told the page's URL.
    expect([...html.matchAll(/(?:href|src|action)="([^"]*)"/g)].map((m) => m[1])).toEqual(['/ui/app.css', '/auth/link']);
    expect(html).toContain('<meta name="referrer" content="same-origin">');
    // A forged link gets the same page (the database is not read): no oracle for who holds a URL.
    const forged = 'B'.repeat(43);
    expect(await (await fetch(url.replace(tokenOf(url), forged))).text()).toBe(html.replace(tokenOf(url), forged));
    // A token of the wrong shape is refused at once, with the error page and the same headers.
    const bad = await fetch(`${server.url}/auth/link?token=x`);
    expect([bad.status, bad.headers.get('referrer-policy'), bad.headers.get('cache-control')]).toEqual([401, 'same-origin', 'no-store']);
  });

  it('a POST sent by another site\'s page is refused before the link is looked up; the link stays usable', async () => {
    const url = await mint();
    const token = tokenOf(url);
    for (const headers of <Record<string, string>[]>[{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'http://evil.example' }, { origin: 'null' }]) {
      expect([headers, await post(token, headers)]).toEqual([headers, { status: 403, location: null, code: 'LOGIN_LINK_CROSS_SITE', session: false }]);
    }
    expect(await stands(url)).toBe(true);
    // Another port of this host, a scheme that is not the web's, an Origin too long to be ours.
    for (const origin of ['http://127.0.0.1:1', `ftp://${new URL(server.url).host}`, `${server.url}/${'a'.repeat(300)}`]) {
      expect([origin, await post(token, { origin })]).toEqual([origin, { status: 403, location: null, code: 'LOGIN_LINK_CROSS_SITE', session: false }]);
    }
    expect(await stands(url)).toBe(true);
    // What the button sends: Sec-Fetch-Site: same-origin from a current browser; from one without
    // Fetch Metadata, the Origin alone, which the page's same-origin referrer policy lets through
    // (as the Chromium test below shows), compared as an origin: case and a default port do not
    // count, nor the scheme without publicUrl (a proxy terminating TLS: the browser says https).
    expect(await post(token, { 'sec-fetch-site': 'same-origin' })).toMatchObject({ status: 303, session: true });
    const host = new URL(server.url).host;
    for (const origin of [server.url, `HTTP://${host.toUpperCase()}`, `https://${host}`]) {
      expect([origin, await post(tokenOf(await mint()), { origin })]).toEqual([origin, { status: 303, location: '/', code: '', session: true }]);
    }
    // A client with neither header (curl) is no page of another site.
    expect(await post(tokenOf(await mint()))).toMatchObject({ status: 303, session: true });
  });

  it('with publicUrl, the Origin must be its origin, however publicUrl is written', async () => {
    const behind = await testServer({ adminApiKey: ADMIN, publicUrl: 'HTTPS://CT.Example:443/ct/' });
    try {
      const url = ((await (await fetch(`${behind.url}/api/v1/login-links`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { url: string }).url;
      const send = async (origin: string) => (await fetch(`${behind.url}/auth/link`, { method: 'POST', redirect: 'manual', headers: { origin, 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${tokenOf(url)}` })).status;
      // The request's own host is not the public one, and http is not https.
      expect([await send(behind.url), await send('http://ct.example'), await send('https://ct.example:8443')]).toEqual([403, 403, 403]);
      expect(await send('https://ct.example')).toBe(303);
    } finally {
      await behind.close();
    }
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
    expect((await context.cookies(server.url)).filter((c) => c.name === '__Host-ct_session')).toEqual([]);
    expect(await stands(url)).toBe(true);

    await page.goto(url);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${server.url}/`);
    await page.locator('.who').waitFor();
    expect(await page.evaluate(async () => ((await (await fetch('/api/v1/session')).json()) as { kind: string }).kind)).toBe('session');
    expect(await stands(url)).toBe(false);
    await context.close();

    // Without Fetch Metadata, only the Origin tells the server the button's post is its own page's:
    // the page's referrer policy must let the browser send it (no-referrer made it `null`, refused).
    const plain = await newContext(browser, ['ct.test']);
    const other = await plain.newPage();
    const link = (await mint()).replace('//127.0.0.1:', '//ct.test:');
    await other.goto(link);
    const [request, response] = await Promise.all([
      other.waitForRequest((r) => r.method() === 'POST'),
      other.waitForResponse((r) => r.request().method() === 'POST'),
      other.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    // Signed in (the Secure cookie is not kept on http://ct.test, so the answer itself is looked at).
    expect([response.status(), await response.headerValue('location'), /data-code>([A-Z_]+)</.exec(await response.text().catch(() => ''))?.[1]]).toEqual([303, '/', undefined]);
    const sent = await request.allHeaders();
    expect([sent['sec-fetch-site'], sent.origin]).toEqual([undefined, new URL(link).origin]);
    expect(await stands(link)).toBe(false);
    await plain.close();
  }, 60_000);
});
