import express, { Router, type Response } from 'express';
import type { ServerContext } from '../context.js';
import type { Role } from '../config.js';
import type { Db } from '../store/db.js';
import { requirePermission } from '../auth/middleware.js';
import { actor, recordAudit } from '../audit.js';
import { validateBody } from '../openapi.js';
import { escapeHtml } from './escape.js';
import { requestOrigin, sameOriginRequest } from './origin.js';
import { loginErrorPage } from './login-error-page.js';
import { sendError } from '../http-error.js';
import { SESSION_COOKIE, createSession, hashSecret, randomSecret, setCookie } from './sessions.js';
import { configuredTrust, linkMinter, linkMinterStanding } from '../auth/configured-trust.js';
import { LINK_ISSUER_PREFIX } from '../auth/principal.js';
import { currentRole, storedGroups } from '../auth/role-mapping.js';

/**
 * One-time sign-in links: an admin (in practice the API key of the person who runs the server,
 * e.g. `ct quickstart`) mints a link for someone to open the dashboard without an OpenID Connect
 * issuer. Nothing is granted that the admin key does not already grant: minting needs `admin`;
 * the link holds 32 random bytes (only their SHA-256 is stored), names its role, expires after
 * LINK_TTL_MS, and is used once (the row is deleted by the request that wins it): by the POST
 * of the button that opening the link (GET) shows, never by the GET itself. Every mint
 * and every use is audited. A link records who minted it (server/auth/configured-trust.ts), and
 * the link, then its session (issuer `login-link:<minter>`), stands only while this process still
 * trusts that minter: removing a leaked bootstrap key or a compromised issuer also ends what it
 * handed out.
 */
const LINK_TTL_MS = 10 * 60_000;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
/**
 * The sign-in form's body: one field of 43 characters, so 1 KB and a few fields are plenty; more
 * is refused (413) before anything is looked up.
 */
const LINK_FORM = express.urlencoded({ extended: false, limit: 1024, parameterLimit: 4, type: 'application/x-www-form-urlencoded' });

function refused(res: Response): void {
  loginErrorPage(res, 401, 'LOGIN_LINK_INVALID', 'this sign-in link is unknown, expired or already used: ask for a new one');
}

/** The link's token from a query or form field: exactly 43 base64url characters, or undefined. */
const tokenOf = (v: unknown): string | undefined => (typeof v === 'string' && TOKEN.test(v) ? v : undefined);

/**
 * Every answer of /auth/link: the token is in the GET's URL (and the POST's body), so no cache
 * keeps the page, and the URL goes in a Referer to no other site (the page loads only this
 * server's stylesheet). `same-origin`, not `no-referrer`: under no-referrer the browser sends the
 * button's own POST with `Origin: null` (Fetch spec), which sameOriginRequest must refuse, so a
 * browser that sends no Sec-Fetch-Site (Safari before 16.4, older ones, a proxy stripping it, or
 * any http:// name that is not localhost) could never sign in.
 */
function privateAnswer(res: Response): void {
  res.set('cache-control', 'no-store').set('referrer-policy', 'same-origin');
}

/**
 * What GET /auth/link shows: a button that posts the token back. The page reveals nothing about
 * the link (the database is not read: a scanner or anyone holding the URL learns neither whether
 * it is valid nor its role or name) and changes nothing; its only resource is the dashboard's own
 * stylesheet, under the same Content-Security-Policy as the rest of the dashboard.
 */
function confirmPage(token: string): string {
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="same-origin"><meta name="robots" content="noindex">' +
    '<title>Sign in to Cerro Torre</title><link rel="stylesheet" href="/ui/app.css"></head>' +
    '<body><main class="login"><h1>Sign in to the Cerro Torre dashboard</h1>' +
    `<p>This one-time link signs this browser in. It works once, within ${LINK_TTL_MS / 60_000} minutes of being made: sign in only if you asked for it.</p>` +
    `<form method="post" action="/auth/link"><input type="hidden" name="token" value="${escapeHtml(token)}"><button type="submit">Sign in</button></form>` +
    '</main></body></html>';
}

/**
 * Mints a link token (returned once; only its hash is kept) and audits who asked for it.
 * `minterSession`: when an issuer's sign-in mints, its subject and mapped groups, kept with the
 * link and its session so that their role follows the minter's (server/auth/role-mapping.ts).
 */
export async function mintLoginLink(db: Db, o: { role: Role; name: string; by: Record<string, unknown> | null; minter: string; minterSession?: { subject: string; groups: readonly string[] | null } }): Promise<{ token: string; expiresAt: number }> {
  const token = randomSecret();
  const expiresAt = Date.now() + LINK_TTL_MS;
  const groups = o.minterSession?.groups;
  await db.run('DELETE FROM ui_login_links WHERE expires_at < ?', [Date.now()]);
  await db.run('INSERT INTO ui_login_links (token_hash, role, name, created_by, minted_by, expires_at, minter_subject, minter_groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
    hashSecret(token), o.role, o.name, JSON.stringify(o.by).slice(0, 500), o.minter, expiresAt, o.minterSession?.subject.slice(0, 256) ?? null, groups ? JSON.stringify(groups) : null,
  ]);
  await recordAudit(db, 'login-link.created', o.name, { by: o.by, mintedBy: o.minter, role: o.role, expiresAt: new Date(expiresAt).toISOString() });
  return { token, expiresAt };
}

export function loginLinkRoutes(ctx: ServerContext, sessionTtlS: number): Router {
  const r = Router();

  r.post('/api/v1/login-links', requirePermission(ctx.db, ctx.oidc, 'admin'), validateBody('createLoginLink'), async (req, res) => {
    const body = req.body as { role?: Role; name?: string };
    const role = body.role ?? 'operator';
    const name = body.name ?? 'dashboard user';
    // A session opened by a link mints no link: otherwise whoever once opened an admin link (from
    // a key or issuer since removed) could keep minting links, each new session with a fresh
    // lifetime, and the chain would outlive every revocation. Links come from a key, an issuer's
    // sign-in or the terminal, each of which this process can stop trusting.
    const minter = req.principal ? linkMinter(req.principal) : null;
    if (!minter) return sendError(res, 403, 'LOGIN_LINK_FORBIDDEN', 'a session opened by a sign-in link (or a host) cannot mint sign-in links: use an API key or sign in with an issuer');
    // Checked before minting: no link is made that could not be handed out.
    const base = requestOrigin(ctx, req);
    if (!base) return sendError(res, 400, 'LOGIN_HOST_INVALID', 'the Host header is not a valid host name: set publicUrl in CT_CONFIG, or reach the server by its name');
    const minterSession = minter.startsWith('issuer:') && req.principal ? { subject: req.principal.id, groups: req.principal.groups ?? null } : undefined;
    const { token, expiresAt } = await mintLoginLink(ctx.db, { role, name, by: actor(req.principal), minter, minterSession });
    res.status(201).json({ url: `${base}/auth/link?token=${token}`, role, name, expiresAt: new Date(expiresAt).toISOString() });
  });

  // Opening the link only shows the page that signs in: chat unfurlers (Slack, Teams) and mail
  // link scanners fetch every URL they see, with GET or HEAD (Express answers HEAD with this
  // route), and used the link up (or were handed the session) before the person clicked it.
  r.get('/auth/link', (req, res) => {
    privateAnswer(res);
    const token = tokenOf(req.query.token);
    if (!token) return refused(res);
    res.status(200).type('html').send(confirmPage(token));
  });

  // The button: the token in the body, posted by a page of this server. Checked before the body is
  // read: another site's page may not post a link of its own (login CSRF: the victim's browser
  // signed in as the attacker, and what they then do seen by the attacker).
  r.post('/auth/link', (req, res, next) => {
    privateAnswer(res);
    if (!sameOriginRequest(ctx, req)) return loginErrorPage(res, 403, 'LOGIN_LINK_CROSS_SITE', 'this sign-in was sent by another site\'s page: open the link itself and press Sign in');
    next();
  }, LINK_FORM, async (req, res) => {
    const token = tokenOf((req.body as Record<string, unknown> | undefined)?.token);
    if (!token) return refused(res);
    const hash = hashSecret(token);
    const [row] = await ctx.db.query<{ role: Role; name: string; minted_by: string | null; expires_at: number; minter_subject: string | null; minter_groups: string | null }>(
      'SELECT role, name, minted_by, expires_at, minter_subject, minter_groups FROM ui_login_links WHERE token_hash = ?', [hash],
    );
    // The DELETE decides: of two requests with the same link, one signs in.
    const won = row ? await ctx.db.run('DELETE FROM ui_login_links WHERE token_hash = ?', [hash]) : { changes: 0 };
    if (!row || won.changes !== 1 || Number(row.expires_at) <= Date.now()) return refused(res);
    // Its minter removed from this process's configuration (or revoked) since: the link is void.
    const minter = row.minted_by ? await linkMinterStanding(ctx.db, row.minted_by) : { ok: false as const };
    if (!minter.ok) return refused(res);
    // Minted by an issuer's admin: no more than that admin has now (their group narrowed or
    // removed since: less, or nothing), by a key no more than that key has now, as the session it
    // opens will be at every request.
    const issuer = `${LINK_ISSUER_PREFIX}${row.minted_by}`;
    const groups = storedGroups(row.minter_groups);
    const role = currentRole(configuredTrust(ctx.db).loginIssuers, issuer, row.role, groups, minter.cap);
    if (!role) return refused(res);
    const s = await createSession(ctx.db, { subject: `link:${row.name}`, name: row.name, issuer, role, groups, minterSubject: row.minter_subject }, sessionTtlS * 1000);
    await recordAudit(ctx.db, 'login-link.used', row.name, { role, mintedBy: row.minted_by, ...(row.minter_subject ? { minterSubject: row.minter_subject } : {}) });
    ctx.log.info({ subject: row.name, role }, 'dashboard sign-in by one-time link');
    res.setHeader('set-cookie', setCookie(SESSION_COOKIE, s.id, sessionTtlS));
    // 303: the browser follows with a GET of the dashboard (a reload does not post the form again).
    res.redirect(303, '/');
  });
  return r;
}
