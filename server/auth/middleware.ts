import type { NextFunction, Request, Response } from 'express';
import type { Db } from '../store/db.js';
import { authenticateApiKey } from './api-keys.js';
import type { OidcVerifier } from './oidc.js';
import { can, type Permission, type Principal } from './principal.js';
import { sendError } from '../http-error.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export type BearerResult = { ok: true; principal: Principal; token: string } | { ok: false; reason: string };

/** `Authorization: Bearer <API key | OIDC JWT>` → who is calling (one place for the API and /mcp). */
export async function authenticateBearer(db: Db, oidc: OidcVerifier, header: string | undefined): Promise<BearerResult> {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) return { ok: false, reason: 'missing bearer credentials' };
  const token = m[1];
  if (token.startsWith('ctk_')) {
    const principal = await authenticateApiKey(db, token);
    return principal ? { ok: true, principal, token } : { ok: false, reason: 'invalid API key' };
  }
  const r = await oidc.verify(token);
  return r.ok ? { ok: true, principal: r.principal, token } : { ok: false, reason: r.reason };
}

/** 401 without valid credentials, 403 without the permission. */
export function requirePermission(db: Db, oidc: OidcVerifier, perm: Permission) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const auth = await authenticateBearer(db, oidc, req.headers.authorization);
    if (!auth.ok) return sendError(res, 401, 'UNAUTHENTICATED', auth.reason);
    const principal = auth.principal;
    if (!can(principal, perm)) return sendError(res, 403, 'FORBIDDEN', `role ${principal.role} may not ${perm}`);
    req.principal = principal;
    next();
  };
}
