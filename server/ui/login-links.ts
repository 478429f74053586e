import { Router, type Response } from 'express';
import type { ServerContext } from '../context.js';
import type { Role } from '../config.js';
import type { Db } from '../store/db.js';
import { requirePermission } from '../auth/middleware.js';
import { actor, recordAudit } from '../audit.js';
import { validateBody } from '../openapi.js';
import { escapeHtml } from './escape.js';
import { requestOrigin } from './origin.js';
import { sendError } from '../http-error.js';
import { SESSION_COOKIE, createSession, hashSecret, randomSecret, setCookie } from './sessions.js';
import { LINK_ISSUER_PREFIX, linkMinter, linkMinterTrusted } from '../auth/configured-trust.js';

/**
 * One-time sign-in links: an admin (in practice the API key of the person who runs the server,
 * e.g. `ct quickstart`) mints a link for someone to open the dashboard without an OpenID Connect
 * issuer. Nothing is granted that the admin key does not already grant: minting needs `admin`;
 * the link holds 32 random bytes (only their SHA-256 is stored), names its role, expires after
 * LINK_TTL_MS, and is used once (the row is deleted by the request that wins it). Every mint
 * and every use is audited. A link records who minted it (server/auth/configured-trust.ts), and
 * the link, then its session (issuer `login-link:<minter>`), stands only while this process still
 * trusts that minter: removing a leaked bootstrap key or a compromised issuer also ends what it
 * handed out.
 */
const LINK_TTL_MS = 10 * 60_000;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

function refused(res: Response): void {
  res.status(401).type('html').send(
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title><link rel="stylesheet" href="/ui/app.css"></head>' +
      `<body><main class="login"><h1>Sign-in failed</h1><p>${escapeHtml('this sign-in link is unknown, expired or already used: ask for a new one')}</p>` +
      '<p>Code: <code data-code>LOGIN_LINK_INVALID</code></p><p><a href="/">Back to the dashboard</a></p></main></body></html>',
  );
}

/** Mints a link token (returned once; only its hash is kept) and audits who asked for it. */
export async function mintLoginLink(db: Db, o: { role: Role; name: string; by: Record<string, unknown> | null; minter: string }): Promise<{ token: string; expiresAt: number }> {
  const token = randomSecret();
  const expiresAt = Date.now() + LINK_TTL_MS;
  await db.run('DELETE FROM ui_login_links WHERE expires_at < ?', [Date.now()]);
  await db.run('INSERT INTO ui_login_links (token_hash, role, name, created_by, minted_by, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [hashSecret(token), o.role, o.name, JSON.stringify(o.by).slice(0, 500), o.minter, expiresAt]);
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
    const { token, expiresAt } = await mintLoginLink(ctx.db, { role, name, by: actor(req.principal), minter });
    res.status(201).json({ url: `${base}/auth/link?token=${token}`, role, name, expiresAt: new Date(expiresAt).toISOString() });
  });

  r.get('/auth/link', async (req, res) => {
    // Express answers HEAD with this route: link checkers and mail or chat scanners send one
    // before a person clicks, and it must not use the link up (nor be handed the session).
    if (req.method === 'HEAD') return void res.status(200).set('cache-control', 'no-store').type('html').end();
    const token = typeof req.query.token === 'string' && TOKEN.test(req.query.token) ? req.query.token : undefined;
    if (!token) return refused(res);
    const hash = hashSecret(token);
    const [row] = await ctx.db.query<{ role: Role; name: string; minted_by: string | null; expires_at: number }>('SELECT role, name, minted_by, expires_at FROM ui_login_links WHERE token_hash = ?', [hash]);
    // The DELETE decides: of two requests with the same link, one signs in.
    const won = row ? await ctx.db.run('DELETE FROM ui_login_links WHERE token_hash = ?', [hash]) : { changes: 0 };
    if (!row || won.changes !== 1 || Number(row.expires_at) <= Date.now()) return refused(res);
    // Its minter removed from this process's configuration (or revoked) since: the link is void.
    if (!row.minted_by || !(await linkMinterTrusted(ctx.db, row.minted_by))) return refused(res);
    const s = await createSession(ctx.db, { subject: `link:${row.name}`, name: row.name, issuer: `${LINK_ISSUER_PREFIX}${row.minted_by}`, role: row.role }, sessionTtlS * 1000);
    await recordAudit(ctx.db, 'login-link.used', row.name, { role: row.role, mintedBy: row.minted_by });
    ctx.log.info({ subject: row.name, role: row.role }, 'dashboard sign-in by one-time link');
    res.setHeader('set-cookie', setCookie(SESSION_COOKIE, s.id, sessionTtlS));
    res.set('cache-control', 'no-store').redirect(302, '/');
  });
  return r;
}
