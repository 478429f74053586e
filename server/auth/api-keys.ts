import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Role } from '../config.js';
import type { Principal } from './principal.js';

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
 * Installs the key given in configuration (the bootstrap admin key) idempotently. The configured
 * key is the only live key of its name, and there is no other way to revoke it: a rotated key
 * replaces the previous one, and none configured (undefined) revokes the last one, so that an
 * operator who removes a leaked CT_ADMIN_API_KEY is not left with it working as admin. A key
 * configured again after it was revoked works again: the configuration decides.
 */
export async function ensureApiKey(db: Db, name: string, key: string | undefined, role: Role): Promise<void> {
  const hash = key === undefined ? '' : hashApiKey(key);
  await db.run('UPDATE api_keys SET revoked_at = ? WHERE name = ? AND hash <> ? AND revoked_at IS NULL', [Date.now(), name, hash]);
  if (key === undefined) return;
  await db.run('INSERT INTO api_keys (id, name, hash, role, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET revoked_at = NULL WHERE api_keys.name = excluded.name', [
    randomUUID(), name, hash, role, '[]', Date.now(),
  ]);
}

/** One indexed lookup; callers remember the outcome for a few seconds (server/auth/token-cache.ts). */
export async function authenticateApiKey(db: Db, key: string): Promise<Principal | null> {
  if (!key.startsWith(PREFIX) || key.length > 200) return null;
  const [row] = await db.query<{ id: string; role: Role; revoked_at: number | null }>('SELECT id, role, revoked_at FROM api_keys WHERE hash = ?', [hashApiKey(key)]);
  if (!row || row.revoked_at) return null;
  return { kind: 'api-key', id: row.id, role: row.role };
}
