import type { Role } from '../config.js';

/** Sessions opened by a one-time link have the issuer `login-link:<minter>` (server/ui/login-links.ts). */
export const LINK_ISSUER_PREFIX = 'login-link:';

export interface Principal {
  kind: 'api-key' | 'oidc' | 'host' | 'session';
  /** A person's display name (dashboard sessions). */
  name?: string;
  /** A dashboard session's sign-in issuer (login.oidc issuer, or `login-link:<minter>`). */
  issuer?: string;
  /** A dashboard session's groups that its issuer's mapping names (null: kept by no session from before). */
  groups?: readonly string[] | null;
  /** The end (ms) of a dashboard session or of an API key that has one: keys they mint end no later (server/routes/api-keys.ts). */
  expiresAt?: number;
  id: string;
  role: Role;
  claims?: Record<string, unknown>;
}

/** What each role may do. Auditors read everything including audit records; viewers not audit. */
export type Permission = 'read' | 'audit' | 'deploy' | 'admin' | 'verify';

const GRANTS: Record<Role, Permission[]> = {
  admin: ['read', 'audit', 'deploy', 'admin', 'verify'],
  operator: ['read', 'deploy', 'verify'],
  viewer: ['read', 'verify'],
  auditor: ['read', 'audit', 'verify'],
};

/** What a role may do; nothing for a name that is no role (`constructor` is not one, though GRANTS inherits it). */
export function grantsOf(role: Role): readonly Permission[] {
  return Object.hasOwn(GRANTS, role) ? GRANTS[role] : [];
}

export function can(p: Principal, perm: Permission): boolean {
  return grantsOf(p.role).includes(perm);
}
