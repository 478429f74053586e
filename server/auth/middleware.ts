import type { NextFunction, Request, Response } from 'express';
import type { Db } from '../store/db.js';
import { authenticateApiKey } from './api-keys.js';
import { tokenCacheFor } from './token-cache.js';
import type { OidcVerifier } from './oidc.js';
import { can, type Permission, type Principal } from './principal.js';
import { sendError } from '../http-error.js';
import { SESSION_COOKIE, findSession, readCookie, sameSecret } from '../ui/sessions.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export type BearerResult = { ok: true; principal: Principal; token: string } | { ok: false; reason: string };

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

/**
 * `Authorization: Bearer <API key | OIDC JWT>` → who is calling (one place for the API and /mcp).
 * A token that passed its full check is remembered for a few seconds (server/auth/token-cache.ts).
 */
export async function authenticateBearer(db: Db, oidc: OidcVerifier, header: string | undefined): Promise<BearerResult> {
  const token = bearerToken(header);
  if (!token) return { ok: false, reason: 'missing bearer credentials' };
  const cache = tokenCacheFor(db);
  const known = cache.get(token);
  if (known) return { ok: true, principal: known, token };
  if (token.startsWith('ctk_')) {
    const epoch = cache.epoch;
    const found = await authenticateApiKey(db, token);
    if (!found) return { ok: false, reason: 'invalid API key' };
    cache.set(token, found.principal, found.expiresAt, Date.now(), epoch);
    return { ok: true, principal: found.principal, token };
  }
  const r = await oidc.verify(token);
  if (!r.ok) return { ok: false, reason: r.reason };
  // Never past the token's own expiry (the verifier's clock tolerance is not extended to the cache).
  const exp = r.principal.claims?.exp;
  cache.set(token, r.principal, typeof exp === 'number' ? exp * 1000 : Infinity);
  return { ok: true, principal: r.principal, token };
}

export type RequestAuth =
  | { ok: true; principal: Principal; /** The session's CSRF token, when the cookie authenticated. */ csrf?: string }
  | { ok: false; code: 'UNAUTHENTICATED' | 'SESSION_INVALID'; reason: string };

/**
 * Who a request's credentials name now: its bearer token, or (without an Authorization header)
 * its session cookie. Also asked again by long-lived streams (server/routes/events.ts), so that a
 * revoked key, an expired token or a signed-out session stops them as it stops a new request.
 */
export async function authenticateRequest(db: Db, oidc: OidcVerifier, req: Request): Promise<RequestAuth> {
  if (!req.headers.authorization) {
    const cookie = readCookie(req, SESSION_COOKIE);
    if (!cookie) return { ok: false, code: 'UNAUTHENTICATED', reason: 'missing bearer credentials' };
    const session = await findSession(db, cookie);
    if (!session) return { ok: false, code: 'SESSION_INVALID', reason: 'session unknown or expired: sign in again' };
    return { ok: true, principal: { kind: 'session', id: session.subject, name: session.name, issuer: session.issuer, role: session.role, groups: session.groups, expiresAt: session.expiresAt }, csrf: session.csrf };
  }
  const auth = await authenticateBearer(db, oidc, req.headers.authorization);
  return auth.ok ? { ok: true, principal: auth.principal } : { ok: false, code: 'UNAUTHENTICATED', reason: auth.reason };
}

/**
 * `Authorization: Bearer <API key | OIDC JWT>` for machines, or the dashboard's session cookie for
 * people; 401 without valid credentials, 403 without the permission. A cookie is sent by the
 * browser on its own, so a state-changing request authenticated by it must also carry the
 * session's CSRF token (`X-CSRF-Token`), which a page of another site cannot read.
 */
export function requirePermission(db: Db, oidc: OidcVerifier, perm: Permission) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const auth = await authenticateRequest(db, oidc, req);
    if (!auth.ok) return sendError(res, 401, auth.code, auth.reason);
    if (auth.csrf !== undefined && !SAFE.has(req.method)) {
      const token = req.header('x-csrf-token') ?? '';
      if (!token || !sameSecret(token, auth.csrf)) return sendError(res, 403, 'CSRF_FAILED', 'missing or wrong X-CSRF-Token');
    }
    const principal = auth.principal;
    if (!can(principal, perm)) return sendError(res, 403, 'FORBIDDEN', `role ${principal.role} may not ${perm}`);
    req.principal = principal;
    next();
  };
}
