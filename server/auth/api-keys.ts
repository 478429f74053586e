import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Role } from '../config.js';
import type { Principal } from './principal.js';
import { BOOTSTRAP_KEY_NAME, apiKeyAccepted } from './configured-trust.js';

/**
 * API keys are 32 random bytes: a plain SHA-256 of such a secret is enough to store (a slow
 * password hash protects low-entropy secrets, which these are not) and lets lookup be one indexed
 * query. The clear key is shown once, at creation.
 */
const PREFIX = 'ctk_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export async function createApiKey(db: Db, name: string, role: Role, scopes: string[] = []): Promise<{ id: string; key: string }> {
  const id = randomUUID();
  const key = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  await db.run('INSERT INTO api_keys (id, name, hash, role, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
    id, name, hashApiKey(key), role, JSON.stringify(scopes), Date.now(),
  ]);
  return { id, key };
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

/** One indexed lookup; callers remember the outcome for a few seconds (server/auth/token-cache.ts). */
export async function authenticateApiKey(db: Db, key: string): Promise<Principal | null> {
  if (!key.startsWith(PREFIX) || key.length > 200) return null;
  const [row] = await db.query<{ id: string; name: string; hash: string; role: Role; revoked_at: number | null }>('SELECT id, name, hash, role, revoked_at FROM api_keys WHERE hash = ?', [hashApiKey(key)]);
  // A bootstrap key is accepted only as the one this process is configured with (server/auth/configured-trust.ts).
  if (!row || !apiKeyAccepted(db, row)) return null;
  return { kind: 'api-key', id: row.id, role: row.role };
}
