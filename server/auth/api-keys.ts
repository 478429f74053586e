import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Role } from '../config.js';
import type { Principal } from './principal.js';
import { BOOTSTRAP_KEY_NAME, apiKeyStanding, type ApiKeyRow } from './configured-trust.js';

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
  /**
   * Minted by a login.oidc sign-in: the groups its mapping named then (the session's), from which
   * the key's role is narrowed at every use (configured-trust.ts apiKeyStanding).
   */
  minterGroups?: readonly string[];
  /** Expires no later than this (ms): the end of the sign-in session that minted it. */
  notAfter?: number;
}

export async function createApiKey(db: Db, name: string, role: Role, o: NewApiKey = {}): Promise<{ id: string; key: string; createdAt: number; expiresAt: number | null }> {
  const id = randomUUID();
  const key = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  const createdAt = Date.now();
  const ends = [o.ttlMs === undefined ? undefined : createdAt + o.ttlMs, o.notAfter].filter((t): t is number => t !== undefined);
  const expiresAt = ends.length ? Math.min(...ends) : null;
  // The scopes column of the first schema is never read: a key's role is all it is granted.
  await db.run('INSERT INTO api_keys (id, name, hash, role, scopes, created_at, expires_at, minted_by, created_by, minter_groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
    id, name, hashApiKey(key), role, '[]', createdAt, expiresAt, o.mintedBy ?? null, o.createdBy === undefined ? null : JSON.stringify(o.createdBy),
    o.minterGroups ? JSON.stringify(o.minterGroups) : null,
  ]);
  return { id, key, createdAt, expiresAt };
}

/** What the list shows of a key: never its hash. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  /** The role it was given. */
  role: Role;
  /**
   * The role the answering server grants it now (null unless live): `role`, narrowed when the
   * sign-in behind it has less under the current group → role mapping.
   */
  roleNow: Role | null;
  /**
   * Whether the key is accepted by the server that answers: `minter-untrusted` when what minted it
   * no longer is, `minter-no-role` when the groups of the sign-in behind it get no role any more.
   */
  state: 'live' | 'revoked' | 'expired' | 'minter-untrusted' | 'minter-no-role';
  /**
   * Live and minted (or up its chain) by an issuer's sign-in whose groups were kept: its role is
   * what the answering server's mapping gives those groups now (the groups as at that sign-in:
   * the identity provider is never asked again). False for keys that keep their role, and for
   * keys minted by a replica from before groups were kept (capped to what the mapping gives anyone).
   */
  followsGroups: boolean;
  createdAt: string;
  expiresAt: string | null;
  /**
   * Live: when it stops being accepted at the latest — its own end, or a key's up its chain
   * (a key minted before keys were capped at their minter's end lists a later `expiresAt`); null
   * when nothing in its chain ends, or it is not live.
   */
  endsAt: string | null;
  revokedAt: string | null;
  mintedBy: string | null;
  createdBy: unknown;
  bootstrap: boolean;
}

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(Number(ms)).toISOString());

/**
 * Newest first, at most `limit`; `liveOnly` leaves out revoked, expired and minter-untrusted keys
 * (so that old revoked rows never push a working key off the page). `truncated`: more matched.
 */
export async function listApiKeys(db: Db, limit: number, liveOnly: boolean, now = Date.now()): Promise<{ keys: ApiKeyInfo[]; truncated: boolean }> {
  type Row = ApiKeyRow & { id: string; created_at: number; created_by: string | null };
  const cols = 'id, name, hash, role, created_at, expires_at, revoked_at, minted_by, created_by, minter_groups';
  const keys: ApiKeyInfo[] = [];
  let truncated = false;
  // Paged by (created_at, id) so that live-only skips any number of dead rows without loading them at once.
  let after: { at: number; id: string } | undefined;
  for (;;) {
    const rows = await db.query<Row>(
      `SELECT ${cols} FROM api_keys WHERE ${liveOnly ? 'revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)' : '1 = 1'}${after ? ' AND (created_at < ? OR (created_at = ? AND id > ?))' : ''} ORDER BY created_at DESC, id LIMIT ?`,
      [...(liveOnly ? [now] : []), ...(after ? [after.at, after.at, after.id] : []), limit + 1],
    );
    for (const r of rows) {
      const standing = await apiKeyStanding(db, r, now);
      const state: ApiKeyInfo['state'] = standing.ok ? 'live' : standing.state;
      if (liveOnly && state !== 'live') continue;
      if (keys.length === limit) {
        truncated = true;
        break;
      }
      keys.push({
        id: r.id, name: r.name, role: r.role, roleNow: standing.ok ? standing.role : null, state, followsGroups: standing.ok && standing.followsGroups, createdAt: iso(r.created_at)!, expiresAt: iso(r.expires_at), endsAt: standing.ok ? iso(standing.endsAt) : null, revokedAt: iso(r.revoked_at),
        mintedBy: r.minted_by ?? null, createdBy: r.created_by ? (JSON.parse(r.created_by) as unknown) : null, bootstrap: r.name === BOOTSTRAP_KEY_NAME,
      });
    }
    if (truncated || rows.length <= limit) return { keys, truncated };
    const last = rows[rows.length - 1];
    after = { at: Number(last.created_at), id: last.id };
  }
}

/** Keys that are neither revoked nor expired (the bound on how many may exist). */
export async function liveApiKeyCount(db: Db, now = Date.now()): Promise<number> {
  const [row] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)', [now]);
  return Number(row?.n ?? 0);
}

/**
 * Revokes keys for good with every key minted under them, in one statement: a key minted by a
 * revoked one would be refused anyway (configured-trust.ts), but would still be listed as live,
 * hold one of the MAX_LIVE_API_KEYS places and cost a walk up its chain on every use.
 * UNION (not UNION ALL) ends the walk on any loop. Answers how many rows it revoked.
 */
export async function revokeWithDescendants(db: Db, where: string, params: unknown[], now = Date.now()): Promise<number> {
  const r = await db.run(
    `UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND id IN (
       WITH RECURSIVE tree(id) AS (SELECT id FROM api_keys WHERE ${where} UNION SELECT k.id FROM api_keys k JOIN tree t ON k.minted_by = 'key:' || t.id)
       SELECT id FROM tree)`,
    [now, ...params],
  );
  return r.changes;
}

/** Revokes a key for good, and the keys minted under it: 'revoked', 'already' (revoked before) or 'unknown'. */
export async function revokeApiKey(db: Db, id: string): Promise<{ outcome: 'revoked' | 'already' | 'unknown'; descendants: number }> {
  return db.tx(async (t) => {
    const [row] = await t.query<{ revoked_at: number | null }>('SELECT revoked_at FROM api_keys WHERE id = ?', [id]);
    if (!row) return { outcome: 'unknown' as const, descendants: 0 };
    const n = await revokeWithDescendants(t, 'id = ?', [id]);
    return row.revoked_at ? { outcome: 'already' as const, descendants: n } : { outcome: 'revoked' as const, descendants: n - 1 };
  });
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
  // With the keys they minted (a rotation is for a leak: what the leaked key made goes too).
  await revokeWithDescendants(db, 'name = ? AND created_at < ? AND revoked_at IS NULL', [BOOTSTRAP_KEY_NAME, Number(mine.created_at)]);
  return { configuredRevoked: Boolean(mine.revoked_at), storedUnconfigured: false };
}

/**
 * One indexed lookup (plus one per minter behind a minted key); callers remember the outcome for a
 * few seconds, never past the key's expiry (server/auth/token-cache.ts).
 */
export async function authenticateApiKey(db: Db, key: string): Promise<{ principal: Principal; expiresAt: number } | null> {
  if (!key.startsWith(PREFIX) || key.length > 200) return null;
  const [row] = await db.query<ApiKeyRow & { id: string }>('SELECT id, name, hash, role, revoked_at, expires_at, minted_by, minter_groups FROM api_keys WHERE hash = ?', [hashApiKey(key)]);
  if (!row) return null;
  // A bootstrap key is accepted only as the one this process is configured with, a minted key only
  // while its minter is, with no more than its minter has now (server/auth/configured-trust.ts).
  const standing = await apiKeyStanding(db, row);
  if (!standing.ok) return null;
  // The chain's first end, not only its own: remembered no longer, and keys it mints end no later.
  const expiresAt = standing.endsAt ?? Infinity;
  return { principal: { kind: 'api-key', id: row.id, role: standing.role, ...(standing.endsAt === undefined ? {} : { expiresAt }) }, expiresAt };
}
