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

/** Installs a key given in configuration (e.g. the bootstrap admin key) idempotently. */
export async function ensureApiKey(db: Db, name: string, key: string, role: Role): Promise<void> {
  // A rotated bootstrap key replaces the previous one: the old key stops working.
  await db.run('UPDATE api_keys SET revoked_at = ? WHERE name = ? AND hash <> ? AND revoked_at IS NULL', [Date.now(), name, hashApiKey(key)]);
  await db.run('INSERT INTO api_keys (id, name, hash, role, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', [
    randomUUID(), name, hashApiKey(key), role, '[]', Date.now(),
  ]);
}

/** One indexed lookup; callers remember the outcome for a few seconds (server/auth/token-cache.ts). */
export async function authenticateApiKey(db: Db, key: string): Promise<Principal | null> {
  if (!key.startsWith(PREFIX) || key.length > 200) return null;
  const [row] = await db.query<{ id: string; role: Role; revoked_at: number | null }>('SELECT id, role, revoked_at FROM api_keys WHERE hash = ?', [hashApiKey(key)]);
  if (!row || row.revoked_at) return null;
  return { kind: 'api-key', id: row.id, role: row.role };
}
