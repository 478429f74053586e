import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Role } from '../config.js';
import type { Principal } from './principal.js';
import { BOOTSTRAP_KEY_NAME, apiKeyAccepted, type ApiKeyRow } from './configured-trust.js';

/**
 * API keys are 32 random bytes: a plain SHA-256 of such a secret is enough to store (a slow
 * password hash protects low-entropy secrets, which these are not) and lets lookup be one indexed
 * query. The clear key is shown once, at creation.
 */
const PREFIX = 'ctk_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export interface NewApiKey {
  /** Lifetime; none: the key does not expire (tests, and keys made by hand). */
  ttlMs?: number;
  /** What minted it (configured-trust.ts linkMinter): the key is accepted only while that is. */
  mintedBy?: string;
  /** Who asked (audit actor), shown by the list. */
  createdBy?: unknown;
}

export async function createApiKey(db: Db, name: string, role: Role, o: NewApiKey = {}): Promise<{ id: string; key: string; createdAt: number; expiresAt: number | null }> {
  const id = randomUUID();
  const key = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  const createdAt = Date.now();
  const expiresAt = o.ttlMs === undefined ? null : createdAt + o.ttlMs;
  // The scopes column of the first schema is never read: a key's role is all it is granted.
  await db.run('INSERT INTO api_keys (id, name, hash, role, scopes, created_at, expires_at, minted_by, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
    id, name, hashApiKey(key), role, '[]', createdAt, expiresAt, o.mintedBy ?? null, o.createdBy === undefined ? null : JSON.stringify(o.createdBy),
  ]);
  return { id, key, createdAt, expiresAt };
}

/** What the list shows of a key: never its hash. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  mintedBy: string | null;
  createdBy: unknown;
  bootstrap: boolean;
}

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(Number(ms)).toISOString());

/** Newest first, at most `limit`. */
export async function listApiKeys(db: Db, limit: number): Promise<ApiKeyInfo[]> {
  const rows = await db.query<{ id: string; name: string; role: Role; created_at: number; expires_at: number | null; revoked_at: number | null; minted_by: string | null; created_by: string | null }>(
    'SELECT id, name, role, created_at, expires_at, revoked_at, minted_by, created_by FROM api_keys ORDER BY created_at DESC, id LIMIT ?', [limit],
  );
  return rows.map((r) => ({
    id: r.id, name: r.name, role: r.role, createdAt: iso(r.created_at)!, expiresAt: iso(r.expires_at), revokedAt: iso(r.revoked_at),
    mintedBy: r.minted_by, createdBy: r.created_by ? (JSON.parse(r.created_by) as unknown) : null, bootstrap: r.name === BOOTSTRAP_KEY_NAME,
  }));
}

/** Keys that are neither revoked nor expired (the bound on how many may exist). */
export async function liveApiKeyCount(db: Db, now = Date.now()): Promise<number> {
  const [row] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)', [now]);
  return Number(row?.n ?? 0);
}

/** Revokes a key for good: 'revoked', 'already' (revoked before) or 'unknown'. */
export async function revokeApiKey(db: Db, id: string): Promise<'revoked' | 'already' | 'unknown'> {
  const changed = await db.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [Date.now(), id]);
  if (changed.changes > 0) return 'revoked';
  const [row] = await db.query<{ id: string }>('SELECT id FROM api_keys WHERE id = ?', [id]);
  return row ? 'already' : 'unknown';
}

/**
 * Records the configured bootstrap admin key (its row gives it an id for audit records). Which
 * bootstrap key is accepted is decided by each process from its own configuration
 * (server/auth/configured-trust.ts), not here: the table is shared by replicas, which may be
 * configured differently, and a write made at start would decide for all of them. So a start never
 * revokes the key of a replica configured without one, and never brings a revoked key back: a key
 * configured again after it was rotated out stays revoked (a rotation is for a leaked key).
 * A rotation revokes only the bootstrap keys recorded BEFORE the configured one, so that an
 * old-configured replica restarting during a rollout does not revoke the new key.
 * Answers what is stored, for the start's warnings.
 */
export async function ensureBootstrapKey(db: Db, key: string | undefined): Promise<{ configuredRevoked: boolean; storedUnconfigured: boolean }> {
  if (key === undefined) {
    const [row] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM api_keys WHERE name = ? AND revoked_at IS NULL', [BOOTSTRAP_KEY_NAME]);
    return { configuredRevoked: false, storedUnconfigured: Number(row?.n ?? 0) > 0 };
  }
  const hash = hashApiKey(key);
  await db.run('INSERT INTO api_keys (id, name, hash, role, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', [
    randomUUID(), BOOTSTRAP_KEY_NAME, hash, 'admin', '[]', Date.now(),
  ]);
  const [mine] = await db.query<{ name: string; created_at: number; revoked_at: number | null }>('SELECT name, created_at, revoked_at FROM api_keys WHERE hash = ?', [hash]);
  if (!mine || mine.name !== BOOTSTRAP_KEY_NAME) return { configuredRevoked: true, storedUnconfigured: false };
  await db.run('UPDATE api_keys SET revoked_at = ? WHERE name = ? AND created_at < ? AND revoked_at IS NULL', [Date.now(), BOOTSTRAP_KEY_NAME, Number(mine.created_at)]);
  return { configuredRevoked: Boolean(mine.revoked_at), storedUnconfigured: false };
}

/**
 * One indexed lookup (plus one per minter behind a minted key); callers remember the outcome for a
 * few seconds, never past the key's expiry (server/auth/token-cache.ts).
 */
export async function authenticateApiKey(db: Db, key: string): Promise<{ principal: Principal; expiresAt: number } | null> {
  if (!key.startsWith(PREFIX) || key.length > 200) return null;
  const [row] = await db.query<ApiKeyRow & { id: string; role: Role }>('SELECT id, name, hash, role, revoked_at, expires_at, minted_by FROM api_keys WHERE hash = ?', [hashApiKey(key)]);
  // A bootstrap key is accepted only as the one this process is configured with (server/auth/configured-trust.ts).
  if (!row || !(await apiKeyAccepted(db, row))) return null;
  return { principal: { kind: 'api-key', id: row.id, role: row.role }, expiresAt: row.expires_at == null ? Infinity : Number(row.expires_at) };
}
