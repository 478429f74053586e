import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import type { Db } from '../store/db.js';
import type { Role } from '../config.js';
import { configuredTrust, sessionIssuerStanding } from '../auth/configured-trust.js';
import { currentRole, storedGroups } from '../auth/role-mapping.js';

/**
 * Dashboard sessions, kept in the database so that every replica knows them. The cookie holds 32
 * random bytes; the table holds only their SHA-256, so a database dump signs nobody in. A cookie
 * minted by another server (another database) is simply unknown here. `__Host-`: a browser takes
 * the cookie only from this origin, Secure, Path=/ and without Domain (setCookie), so a sibling
 * subdomain or a plain-HTTP page cannot plant a session or login cookie of its own.
 */
export const SESSION_COOKIE = '__Host-ct_session';
/** Binds a login in progress to the browser that started it (login CSRF). */
export const LOGIN_COOKIE = '__Host-ct_login';

export interface Session {
  subject: string;
  name: string;
  issuer: string;
  role: Role;
  csrf: string;
  expiresAt: number;
  /**
   * The groups the role is re-derived from (server/auth/role-mapping.ts): an issuer's sign-in's,
   * or, for a link minted by one, its minter's. Null: none kept (other links, sessions from before).
   */
  groups?: readonly string[] | null;
  /** For a link minted by an issuer's sign-in: the minter's subject. */
  minterSubject?: string | null;
}

export const hashSecret = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
export const randomSecret = () => randomBytes(32).toString('base64url');

/**
 * `groups`: for an issuer's sign-in, the person's groups its mapping names (the role is re-derived
 * from them at every read); for a link minted by such a sign-in, the minter's (with
 * `minterSubject`); absent for other links, whose role their minter chose.
 */
export async function createSession(db: Db, who: Omit<Session, 'csrf' | 'expiresAt'>, ttlMs: number): Promise<{ id: string; csrf: string; expiresAt: number }> {
  const id = randomSecret();
  const csrf = randomSecret();
  const now = Date.now();
  const expiresAt = now + ttlMs;
  // Expired sessions are swept as new ones are made: the table stays the size of who is signed in.
  await db.run('DELETE FROM ui_sessions WHERE expires_at < ?', [now]);
  await db.run('INSERT INTO ui_sessions (id_hash, subject, name, issuer, role, csrf, created_at, expires_at, mapped_groups, minter_subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
    hashSecret(id), who.subject.slice(0, 256), who.name.slice(0, 256), who.issuer, who.role, csrf, now, expiresAt, who.groups ? JSON.stringify(who.groups) : null, who.minterSubject?.slice(0, 256) ?? null,
  ]);
  return { id, csrf, expiresAt };
}

export async function findSession(db: Db, id: string): Promise<Session | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
  const [row] = await db.query<{ subject: string; name: string; issuer: string; role: Role; csrf: string; expires_at: number; mapped_groups: string | null; minter_subject: string | null }>(
    'SELECT subject, name, issuer, role, csrf, expires_at, mapped_groups, minter_subject FROM ui_sessions WHERE id_hash = ?', [hashSecret(id)],
  );
  if (!row || Number(row.expires_at) <= Date.now()) return null;
  // Checked at every read, from this process's configuration (server/auth/configured-trust.ts): a
  // session of an issuer removed here, or of a link whose minter is no longer trusted here, is
  // refused, including one made by another replica or before the removal.
  const trusted = await sessionIssuerStanding(db, row.issuer);
  if (!trusted.ok) return null;
  // An issuer's session has the role this process's mapping gives its groups now, never more than
  // at sign-in, and a link minted by an issuer's admin no more than that admin has now
  // (server/auth/role-mapping.ts); none left: refused. Other links' sessions keep their own, never
  // more than their minting key has now.
  const groups = storedGroups(row.mapped_groups);
  const role = currentRole(configuredTrust(db).loginIssuers, row.issuer, row.role, groups, trusted.cap);
  if (!role) return null;
  return { subject: row.subject, name: row.name, issuer: row.issuer, role, csrf: row.csrf, expiresAt: Number(row.expires_at), groups, minterSubject: row.minter_subject };
}

export async function deleteSession(db: Db, id: string): Promise<void> {
  await db.run('DELETE FROM ui_sessions WHERE id_hash = ?', [hashSecret(id)]);
}

/** One cookie's value from the request, bounded (a huge Cookie header is not parsed). */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** `HttpOnly; Secure; SameSite=Lax`: Lax so that the redirect back from the issuer carries it. */
export function setCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
