import express, { Router } from 'express';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { can } from '../auth/principal.js';
import { sendError } from '../http-error.js';
import { LOGIN_COOKIE, SESSION_COOKIE, createSession, deleteSession, findSession, readCookie, setCookie } from './sessions.js';
import { LoginError, OidcLogin } from './oidc-login.js';
import { loginErrorPage } from './login-error-page.js';
import { loginLinkRoutes } from './login-links.js';
import { requestOrigin } from './origin.js';

const DEFAULT_TTL_S = 8 * 3600;

/** The built front end (scripts/build.mjs): build/ui beside the sources, or beside the built server. */
export function uiAssetsDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [resolve(here, '../../build/ui'), resolve(here, '../../ui')].find((d) => existsSync(join(d, 'index.html')));
}

/** Only same-site paths are returned to after sign-in (no open redirect). */
function safeReturn(v: unknown): string {
  return typeof v === 'string' && /^\/(?![/\\])[\x21-\x7e]{0,500}$/.test(v) ? v : '/';
}

/**
 * The dashboard: its static files at `/` and `/ui/`, people's sign-in (`/auth/…`) and who is signed
 * in (`/api/v1/session`). Everything it shows comes from the same API machines use.
 */
export function uiRoutes(ctx: ServerContext): { router: Router; close(): Promise<void> } {
  const r = Router();
  const login = ctx.config.login?.oidc.length ? new OidcLogin(ctx.db, ctx.config.login) : undefined;
  const ttlS = ctx.config.login?.sessionTtlSeconds ?? DEFAULT_TTL_S;
  const assets = uiAssetsDir();
  const index = assets ? readFileSync(join(assets, 'index.html'), 'utf8') : undefined;

  r.get('/', (_req, res) => {
    if (!index) return void res.status(503).type('text').send('dashboard not built: run npm run build');
    res.set('cache-control', 'no-store').type('html').send(index);
  });
  if (assets) r.use('/ui', express.static(assets, { index: false, fallthrough: false, maxAge: '1h' }));

  r.use(loginLinkRoutes(ctx, ttlS));

  r.get('/auth/issuers', (_req, res) => void res.json({ issuers: login?.issuers() ?? [] }));

  r.get('/auth/login', async (req, res) => {
    if (!login) return loginErrorPage(res, 404, 'LOGIN_NOT_CONFIGURED', 'no sign-in issuer is configured (login.oidc in CT_CONFIG)');
    const base = requestOrigin(ctx, req);
    if (!base) return loginErrorPage(res, 400, 'LOGIN_HOST_INVALID', 'the Host header is not a valid host name: set publicUrl in CT_CONFIG, or reach the server by its name');
    try {
      const started = await login.start(Number(req.query.issuer ?? 0), `${base}/auth/callback`, safeReturn(req.query.returnTo));
      res.setHeader('set-cookie', setCookie(LOGIN_COOKIE, started.browser, 600));
      res.redirect(302, started.url);
    } catch (e) {
      if (!(e instanceof LoginError)) throw e;
      if (e.code === 'LOGIN_BUSY') {
        res.setHeader('retry-after', String(e.retryAfterSeconds ?? 60));
        return loginErrorPage(res, 503, e.code, e.message);
      }
      return loginErrorPage(res, e.code === 'LOGIN_UNKNOWN_ISSUER' ? 404 : 502, e.code, e.message);
    }
  });

  r.get('/auth/callback', async (req, res) => {
    if (!login) return loginErrorPage(res, 404, 'LOGIN_NOT_CONFIGURED', 'no sign-in issuer is configured');
    const clear = setCookie(LOGIN_COOKIE, '', 0);
    if (typeof req.query.error === 'string') {
      res.setHeader('set-cookie', clear);
      return loginErrorPage(res, 401, 'LOGIN_REJECTED', `the issuer refused: ${req.query.error.slice(0, 100)}`);
    }
    try {
      const who = await login.finish(new URL(req.originalUrl, 'http://callback.invalid'), readCookie(req, LOGIN_COOKIE));
      const s = await createSession(ctx.db, who, ttlS * 1000);
      ctx.log.info({ subject: who.subject, issuer: who.issuer, role: who.role }, 'dashboard sign-in');
      res.setHeader('set-cookie', [clear, setCookie(SESSION_COOKIE, s.id, ttlS)]);
      res.redirect(302, who.returnTo);
    } catch (e) {
      res.setHeader('set-cookie', clear);
      if (e instanceof LoginError) return loginErrorPage(res, e.code === 'LOGIN_NO_ROLE' ? 403 : 401, e.code, e.message);
      throw e;
    }
  });

  // Logout changes state: it needs the CSRF token like any other state-changing request.
  r.post('/auth/logout', requirePermission(ctx.db, ctx.oidc, 'read'), async (req, res) => {
    const id = readCookie(req, SESSION_COOKIE);
    if (id) await deleteSession(ctx.db, id);
    res.setHeader('set-cookie', setCookie(SESSION_COOKIE, '', 0));
    res.status(204).end();
  });

  r.get('/api/v1/session', requirePermission(ctx.db, ctx.oidc, 'read'), async (req, res) => {
    const p = req.principal;
    if (!p) return sendError(res, 401, 'UNAUTHENTICATED', 'not signed in');
    const session = p.kind === 'session' ? await findSession(ctx.db, readCookie(req, SESSION_COOKIE) ?? '') : null;
    res.set('cache-control', 'no-store').json({
      kind: p.kind,
      subject: p.id,
      name: p.name ?? p.id,
      role: p.role,
      can: { deploy: can(p, 'deploy'), admin: can(p, 'admin'), audit: can(p, 'audit') },
      csrfToken: session?.csrf ?? null,
      expiresAt: session ? new Date(session.expiresAt).toISOString() : null,
    });
  });
  return { router: r, close: async () => void (await login?.close()) };
}
