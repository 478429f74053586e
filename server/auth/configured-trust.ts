import type { Db } from '../store/db.js';
import type { Principal } from './principal.js';
import type { GroupRoles } from './role-mapping.js';

/**
 * What THIS process's configuration trusts, consulted on every request that presents a credential
 * whose standing depends on configuration: the bootstrap admin key, dashboard sessions (their
 * sign-in issuer) and one-time links (who minted them). Replicas share one database but may run
 * different configurations (during a rollout, or by mistake): deciding from the shared tables at
 * start made the last replica to start win for all of them, so one started without
 * CT_ADMIN_API_KEY revoked it everywhere and one restarted with an old (leaked) key brought it
 * back everywhere. Each process decides from its own configuration instead, and a removed key or
 * issuer stops working on every process that no longer configures it, however old the session.
 *
 * Kept per database (one per server, as the token cache), so that every place that already has
 * the database can ask without new plumbing. A database no server registered trusts nothing.
 */
export interface ConfiguredTrust {
  /** SHA-256 (hex) of CT_ADMIN_API_KEY, or null when none is configured. */
  bootstrapKeyHash: string | null;
  /**
   * login.oidc issuers (the dashboard's sign-in issuers), each with its group → role mappings
   * (several entries may name one issuer): a session's role is re-derived from them at every read.
   */
  loginIssuers: ReadonlyMap<string, readonly GroupRoles[]>;
  /** oidc issuers: CI tokens (a CI role may be admin, and admins mint links). */
  ciIssuers: ReadonlySet<string>;
  /** Whether this process prints a sign-in link to its terminal (server/main.ts). */
  terminalLinks: boolean;
}

/** The api_keys name of the configured bootstrap key (server/auth/api-keys.ts). */
export const BOOTSTRAP_KEY_NAME = 'bootstrap-admin';
/** Sessions opened by a one-time link have the issuer `login-link:<minter>` (server/ui/login-links.ts). */
export const LINK_ISSUER_PREFIX = 'login-link:';

const NOTHING: ConfiguredTrust = { bootstrapKeyHash: null, loginIssuers: new Map(), ciIssuers: new Set(), terminalLinks: false };
const trusts = new WeakMap<Db, ConfiguredTrust>();

export function setConfiguredTrust(db: Db, trust: ConfiguredTrust): void {
  trusts.set(db, trust);
}

export function configuredTrust(db: Db): ConfiguredTrust {
  return trusts.get(db) ?? NOTHING;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** A server on this machine only, with no sign-in issuer: whoever reads its terminal gets a link. */
export function printsTerminalLink(host: string, loginIssuers: number): boolean {
  return loginIssuers === 0 && LOOPBACK.has(host);
}

/** What an api_keys row holds that decides whether it is accepted. */
export interface ApiKeyRow {
  name: string;
  hash: string;
  revoked_at: number | null;
  expires_at?: number | null;
  minted_by?: string | null;
}

/**
 * Minters followed back at most this far: a key minted by a key minted by a key… Each step is one
 * lookup; a longer chain is refused rather than walked (ids are random, so no chain loops).
 */
const MAX_MINTER_CHAIN = 8;

/**
 * An api_keys row stands for this process: not revoked, not expired, a bootstrap key only if it is
 * the one configured here, and a minted key only while whatever minted it still is trusted (as
 * sign-in links): revoking a leaked admin key, rotating the bootstrap key or removing an issuer
 * also stops the keys minted with it, so a leak cannot be made to outlive its revocation.
 */
export async function apiKeyAccepted(db: Db, row: ApiKeyRow, now = Date.now(), depth = 0): Promise<boolean> {
  if (row.revoked_at) return false;
  if (row.expires_at != null && Number(row.expires_at) <= now) return false;
  if (row.name === BOOTSTRAP_KEY_NAME && row.hash !== configuredTrust(db).bootstrapKeyHash) return false;
  // Keys from before minters were recorded (the bootstrap key, keys made by hand) have none.
  if (!row.minted_by) return true;
  return depth < MAX_MINTER_CHAIN && linkMinterTrusted(db, row.minted_by, depth + 1);
}

/**
 * Who stands behind a one-time link, recorded when it is minted: `key:<api key id>`,
 * `issuer:<login.oidc issuer>`, `ci:<oidc issuer>`, or `terminal`. Null: this principal may not
 * mint (a host, or a session opened by a link — see server/ui/login-links.ts).
 */
export function linkMinter(p: Principal): string | null {
  if (p.kind === 'api-key') return `key:${p.id}`;
  if (p.kind === 'session') return p.issuer && !p.issuer.startsWith(LINK_ISSUER_PREFIX) ? `issuer:${p.issuer}` : null;
  if (p.kind === 'oidc') return typeof p.claims?.iss === 'string' ? `ci:${p.claims.iss}` : null;
  return null;
}

/** Whether the minter of a link (or of the session it opened) is still trusted by this process. */
export async function linkMinterTrusted(db: Db, minter: string, depth = 0): Promise<boolean> {
  const t = configuredTrust(db);
  if (minter === 'terminal') return t.terminalLinks;
  if (minter.startsWith('issuer:')) return t.loginIssuers.has(minter.slice('issuer:'.length));
  if (minter.startsWith('ci:')) return t.ciIssuers.has(minter.slice('ci:'.length));
  if (minter.startsWith('key:')) {
    const [row] = await db.query<ApiKeyRow>('SELECT name, hash, revoked_at, expires_at, minted_by FROM api_keys WHERE id = ?', [minter.slice('key:'.length)]);
    return row !== undefined && apiKeyAccepted(db, row, Date.now(), depth);
  }
  return false;
}

/**
 * Whether a dashboard session's issuer is trusted by this process: a login.oidc issuer configured
 * here, or a link whose minter still is. Anything else (an issuer removed from this process's
 * configuration, links from before minters were recorded) is refused.
 */
export async function sessionIssuerTrusted(db: Db, issuer: string): Promise<boolean> {
  if (issuer.startsWith(LINK_ISSUER_PREFIX)) return linkMinterTrusted(db, issuer.slice(LINK_ISSUER_PREFIX.length));
  return configuredTrust(db).loginIssuers.has(issuer);
}
