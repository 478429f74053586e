/**
 * Sign-in for people (issue 12): OpenID Connect code flow + PKCE against a real oidc-provider,
 * sessions in the database, cookies, CSRF, logout, expiry, and every forged or replayed callback
 * refused. One Chromium for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { gzipSync } from 'node:zlib';
import { testServer } from '../server/support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createSession } from '../../server/ui/sessions.js';
import { beginHttpLogin, startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
import { launchBrowser, newContext, signIn } from '../support/browser.js';
import type { RunningServer } from '../../server/start.js';

type Server = RunningServer & { dir: string };

describe('dashboard sign-in', () => {
  let provider: LoginProvider;
  let server: Server;
  let other: Server;
  let browser: Browser;

  const login = (issuer: string, codeTtl?: number) => ({
    oidc: [{ issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', name: 'Test IdP', roles: { ops: 'operator' as const, readers: 'viewer' as const } }],
    allowedAddresses: ['127.0.0.1'],
    sessionTtlSeconds: codeTtl ?? 3600,
  });

  beforeAll(async () => {
    provider = await startLoginProvider({ alice: { name: 'Alice <b>Ops</b>', groups: ['ops'] }, victor: { name: 'Victor', groups: ['readers'] }, nobody: { name: 'No One', groups: ['guests'] } });
    server = await testServer({ login: login(provider.issuer) }, { extend: (ctx) => deployPipeline(ctx) });
    other = await testServer({ login: login(provider.issuer) });
    provider.configure([`${server.url}/auth/callback`, `${other.url}/auth/callback`], { codeTtlSeconds: 2 });
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await other?.close();
    await provider?.close();
  });

  /**
   * Runs a login as a browser would, over plain HTTP with two cookie jars, and stops before the
   * callback: the server has not seen it; the test then presents it (or a forgery of it).
   */
  async function captureCallback(who: string, base = server.url): Promise<{ url: string; loginCookie: string }> {
    const { callback, loginCookie } = await beginHttpLogin(provider, base, who);
    return { url: callback, loginCookie };
  }

  /** Presents a callback with (or without) the login-binding cookie. */
  async function visit(url: string, loginCookie?: string): Promise<{ status: number; code: string; cookie: string | null }> {
    const res = await fetch(url, { redirect: 'manual', headers: loginCookie ? { cookie: `__Host-ct_login=${loginCookie}` } : {} });
    const text = await res.text();
    return { status: res.status, code: /data-code>([A-Z_]+)</.exec(text)?.[1] ?? '', cookie: res.headers.getSetCookie().find((c) => c.startsWith('__Host-ct_session=') && !c.startsWith('__Host-ct_session=;')) ?? null };
  }


  it('first load: at most 150 KB of JavaScript and CSS gzip, all from the server itself', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    const loaded: { url: string; type: string; body: Promise<Buffer> }[] = [];
    const elsewhere: string[] = [];
    page.on('request', (r) => void (r.url().startsWith(`${server.url}/`) || elsewhere.push(r.url())));
    page.on('response', (r) => void loaded.push({ url: r.url(), type: r.request().resourceType(), body: r.body() }));
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: /^Sign in with/ }).waitFor();
    const code = loaded.filter((r) => r.type === 'script' || r.type === 'stylesheet');
    expect(code.map((r) => new URL(r.url).pathname).sort()).toEqual(['/ui/app.css', '/ui/app.js', '/ui/boot.js']);
    const gzipped = (await Promise.all(code.map(async (r) => gzipSync(await r.body, { level: 9 }).length))).reduce((a, b) => a + b, 0);
    expect(gzipped).toBeGreaterThan(5_000);
    expect(gzipped).toBeLessThanOrEqual(150 * 1024);
    expect(elsewhere).toEqual([]);
    await context.close();
  }, 30_000);

  it('signs a person in with their role, shows their name as text, and signs them out', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, server.url, 'alice');
    await expect(page.locator('.role').textContent()).resolves.toBe('operator');
    // A display name with markup is shown as text.
    await expect(page.locator('.who').textContent()).resolves.toContain('Alice <b>Ops</b>');
    expect(await page.locator('.who b').count()).toBe(0);
    const cookie = (await context.cookies()).find((c) => c.name === '__Host-ct_session');
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax' });
    // Strict CSP and the other helmet headers on the page.
    const res = await fetch(`${server.url}/`);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: /^Sign in with/ }).waitFor();
    // The session is gone from the database, not only from the browser.
    const after = await fetch(`${server.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${cookie?.value}` } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { code: string } }).error.code).toBe('SESSION_INVALID');
    await context.close();
  }, 60_000);

  it('refuses a person in no mapped group', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(`${server.url}/auth/login?issuer=0`);
    await page.locator('input[name=login]').fill('nobody');
    await page.locator('input[name=password]').fill('x');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.locator('[data-code]').waitFor();
    expect(await page.locator('[data-code]').textContent()).toBe('LOGIN_NO_ROLE');
    expect((await context.cookies()).some((c) => c.name === '__Host-ct_session')).toBe(false);
    await context.close();
  }, 60_000);

  it('refuses forged and replayed callbacks: wrong state, replay, another browser, wrong issuer, swapped code, expired code', async () => {
    const refused = (code: string) => ({ status: 401, code, cookie: null });
    // Another browser (no login-binding cookie) presenting a genuine callback; that consumed the
    // flow, so the genuine browser cannot use it afterwards either (single use).
    const first = await captureCallback('alice');
    expect(await visit(first.url)).toEqual(refused('LOGIN_STATE_INVALID'));
    expect(await visit(first.url, first.loginCookie)).toEqual(refused('LOGIN_STATE_INVALID'));

    // Wrong state; then the genuine callback works once, and its replay is refused.
    const second = await captureCallback('alice');
    const forged = new URL(second.url);
    forged.searchParams.set('state', 'x'.repeat(43));
    expect(await visit(forged.href, second.loginCookie)).toEqual(refused('LOGIN_STATE_INVALID'));
    const ok = await visit(second.url, second.loginCookie);
    expect(ok.status).toBe(302);
    expect(ok.cookie).toMatch(/^__Host-ct_session=[\w-]{43}; Path=\/; HttpOnly; Secure; SameSite=Lax/);
    expect(await visit(second.url, second.loginCookie)).toEqual(refused('LOGIN_STATE_INVALID'));

    // Wrong issuer in the response (RFC 9207 `iss`).
    const third = await captureCallback('alice');
    const wrongIss = new URL(third.url);
    wrongIss.searchParams.set('iss', 'http://127.0.0.1:1');
    expect(await visit(wrongIss.href, third.loginCookie)).toEqual(refused('LOGIN_REJECTED'));

    // A code from one login presented with another login's state: PKCE verifier and nonce differ.
    const a = await captureCallback('alice');
    const b = await captureCallback('alice');
    const swapped = new URL(a.url);
    swapped.searchParams.set('code', new URL(b.url).searchParams.get('code') ?? '');
    expect(await visit(swapped.href, a.loginCookie)).toEqual(refused('LOGIN_REJECTED'));

    // An expired code (the provider's codes live 2 s here).
    const late = await captureCallback('alice');
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await visit(late.url, late.loginCookie)).toEqual(refused('LOGIN_REJECTED'));

    // An issuer's error comes back as a refusal too.
    expect((await visit(`${server.url}/auth/callback?error=access_denied&state=abc`)).code).toBe('LOGIN_REJECTED');
  }, 60_000);

  it('refuses a session cookie from another server, an expired session, a CSRF-less POST and a viewer operating', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, other.url, 'alice');
    const foreign = (await context.cookies(other.url)).find((c) => c.name === '__Host-ct_session')?.value;
    expect(foreign).toBeTruthy();
    const onServer = await fetch(`${server.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${foreign}` } });
    expect(onServer.status).toBe(401);
    expect(((await onServer.json()) as { error: { code: string } }).error.code).toBe('SESSION_INVALID');

    const expired = await createSession(server.ctx.db, { subject: 'alice', name: 'Alice', issuer: provider.issuer, role: 'operator' }, 1);
    await new Promise((r) => setTimeout(r, 5));
    expect((await fetch(`${server.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${expired.id}` } })).status).toBe(401);

    const op = await createSession(server.ctx.db, { subject: 'alice', name: 'Alice', issuer: provider.issuer, role: 'operator' }, 60_000);
    const post = (headers: Record<string, string>) => fetch(`${server.url}/api/v1/sync`, { method: 'POST', headers: { cookie: `__Host-ct_session=${op.id}`, ...headers } });
    const noCsrf = await post({});
    expect(noCsrf.status).toBe(403);
    expect(((await noCsrf.json()) as { error: { code: string } }).error.code).toBe('CSRF_FAILED');
    expect((await post({ 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await post({ 'x-csrf-token': op.csrf })).status).toBe(202);
    // Reads need no token.
    expect((await fetch(`${server.url}/api/v1/deployments`, { headers: { cookie: `__Host-ct_session=${op.id}` } })).status).toBe(200);

    const viewer = await createSession(server.ctx.db, { subject: 'victor', name: 'Victor', issuer: provider.issuer, role: 'viewer' }, 60_000);
    for (const path of ['/api/v1/sync', '/api/v1/deployments/x/rollback']) {
      const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { cookie: `__Host-ct_session=${viewer.id}`, 'x-csrf-token': viewer.csrf } });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    await context.close();
  }, 60_000);
});
