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

/** `Authorization: Bearer <API key | OIDC JWT>`; 401 without valid credentials, 403 without the permission. */
export function requirePermission(db: Db, oidc: OidcVerifier, perm: Permission) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return sendError(res, 401, 'UNAUTHENTICATED', 'missing bearer credentials');
    const token = m[1];
    let principal: Principal | null = null;
    let reason = 'invalid API key';
    if (token.startsWith('ctk_')) principal = await authenticateApiKey(db, token);
    else {
      const r = await oidc.verify(token);
      if (r.ok) principal = r.principal;
      else reason = r.reason;
    }
    if (!principal) return sendError(res, 401, 'UNAUTHENTICATED', reason);
    if (!can(principal, perm)) return sendError(res, 403, 'FORBIDDEN', `role ${principal.role} may not ${perm}`);
    req.principal = principal;
    next();
  };
}
