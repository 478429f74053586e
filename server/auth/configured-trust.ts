import type { Db } from '../store/db.js';
import type { Role } from '../config.js';
import { LINK_ISSUER_PREFIX, type Principal } from './principal.js';
import { minterRole, narrowerRole, sessionRole, storedGroups, type GroupRoles } from './role-mapping.js';

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

/** What an api_keys row holds that decides whether it is accepted, and with which role. */
export interface ApiKeyRow {
  name: string;
  hash: string;
  role: Role;
  revoked_at: number | null;
  expires_at?: number | null;
  minted_by?: string | null;
  /**
   * For a key minted by a login.oidc sign-in: the groups its mapping named at that sign-in (JSON
   * list, as ui_sessions.mapped_groups). Null: keys minted otherwise, or before this was kept.
   */
  minter_groups?: string | null;
}

/**
 * Minters followed back at most this far: a key minted by a key minted by a key… Each step is one
 * lookup; a longer chain is refused rather than walked (ids are random, so no chain loops).
 */
const MAX_MINTER_CHAIN = 8;

/**
 * A key's standing with this process: accepted with its role now, or why not (the list's state).
 * `minter-untrusted`: what minted it (or a key up its chain) is revoked, expired, or not trusted
 * here; `minter-no-role`: the sign-in behind it (its own minter's, or up its chain) has no role
 * under this process's mapping any more.
 */
export type ApiKeyStanding =
  | {
    ok: true; role: Role; /** Its role follows the groups kept by the sign-in behind it (up its chain). */ followsGroups: boolean;
    /** When it stops being accepted at the latest (ms): its own end or a key's up its chain, whichever is first; none: no end. */
    endsAt?: number;
  }
  | { ok: false; state: 'revoked' | 'expired' | 'minter-untrusted' | 'minter-no-role' };

/**
 * An api_keys row stands for this process: not revoked, not expired, a bootstrap key only if it is
 * the one configured here, and a minted key only while whatever minted it still is trusted (as
 * sign-in links): revoking a leaked admin key, rotating the bootstrap key or removing an issuer
 * also stops the keys minted with it, so a leak cannot be made to outlive its revocation.
 * Its role is never more than its minter has now (as a link's, server/auth/role-mapping.ts): a key
 * minted by an issuer's sign-in has at most what the minter's recorded groups give an admin under
 * this process's mapping, and a key minted by a key at most what that key has now, so narrowing
 * a group's role in the mapping, or removing the group from it, narrows or refuses every key its
 * members minted, and the keys those minted. The groups are as the identity provider gave them at
 * that sign-in (it is never asked again): that is why such keys end with their session
 * (server/routes/api-keys.ts). A key minted by an issuer's sign-in whose groups were not kept (by a replica from
 * before they were, during a rolling upgrade) has at most what the mapping still gives anyone, as
 * sessions and links without groups. Keys whose chain reaches no sign-in (the bootstrap key, CI
 * tokens, the terminal) keep the role they were given.
 */
export async function apiKeyStanding(db: Db, row: ApiKeyRow, now = Date.now(), depth = 0): Promise<ApiKeyStanding> {
  if (row.revoked_at) return { ok: false, state: 'revoked' };
  if (row.expires_at != null && Number(row.expires_at) <= now) return { ok: false, state: 'expired' };
  if (row.name === BOOTSTRAP_KEY_NAME && row.hash !== configuredTrust(db).bootstrapKeyHash) return { ok: false, state: 'minter-untrusted' };
  // Keys from before minters were recorded (the bootstrap key, keys made by hand) have none.
  const own = row.expires_at == null ? undefined : Number(row.expires_at);
  if (!row.minted_by) return { ok: true, role: row.role, followsGroups: false, endsAt: own };
  if (depth >= MAX_MINTER_CHAIN) return { ok: false, state: 'minter-untrusted' };
  const minter = await minterStanding(db, row.minted_by, { groups: storedGroups(row.minter_groups), role: row.role }, now, depth + 1);
  if (!minter.ok) return { ok: false, state: minter.state === 'minter-no-role' ? 'minter-no-role' : 'minter-untrusted' };
  const followsGroups = minter.followsGroups ?? false;
  // A key minted by a key is refused once that one ends (a key minted before keys were capped at
  // their minter's end may say later): the earlier of the two.
  const endsAt = own === undefined ? minter.endsAt : minter.endsAt === undefined ? own : Math.min(own, minter.endsAt);
  if (minter.cap === undefined) return { ok: true, role: row.role, followsGroups, endsAt };
  // Undefined also for a role this server does not know: it grants nothing, refused.
  const role = narrowerRole(row.role, minter.cap);
  return role ? { ok: true, role, followsGroups, endsAt } : { ok: false, state: 'minter-no-role' };
}

/** Whether an api_keys row is accepted by this process (apiKeyStanding). */
export async function apiKeyAccepted(db: Db, row: ApiKeyRow, now = Date.now()): Promise<boolean> {
  return (await apiKeyStanding(db, row, now)).ok;
}

type MinterStanding =
  | { ok: true; /** The most the minted credential may have now; none: its own role. */ cap?: Role; followsGroups?: boolean; /** A minting key's end, up its chain. */ endsAt?: number }
  | Exclude<ApiKeyStanding, { ok: true }>;

/**
 * Whether `minter` (a linkMinter string) is trusted by this process now, and what it caps: an
 * issuer's sign-in whose groups were kept, what they give an admin now (role-mapping.ts
 * minterRole, as links); a key, its role now (apiKeyStanding, up its chain). `key`: the key row
 * being judged (its kept groups, null when none were, and its role); none for a link, which
 * currentRole (role-mapping.ts) narrows from the groups the link keeps.
 */
async function minterStanding(db: Db, minter: string, key: { groups: readonly string[] | null; role: Role } | undefined, now: number, depth: number): Promise<MinterStanding> {
  const t = configuredTrust(db);
  const trusted = (yes: boolean): MinterStanding => (yes ? { ok: true } : { ok: false, state: 'minter-untrusted' });
  if (minter === 'terminal') return trusted(t.terminalLinks);
  if (minter.startsWith('ci:')) return trusted(t.ciIssuers.has(minter.slice('ci:'.length)));
  if (minter.startsWith('issuer:')) {
    const issuer = minter.slice('issuer:'.length);
    if (!t.loginIssuers.has(issuer)) return { ok: false, state: 'minter-untrusted' };
    if (!key) return { ok: true };
    // No groups kept (a replica from before they were minted it, during a rolling upgrade): what
    // the mapping still gives anyone, as a session without groups (sessionRole), never more. The
    // key's own role goes in, so that an auditor key is not narrowed by an operator mapping.
    const cap = key.groups === null ? sessionRole(t.loginIssuers.get(issuer) ?? [], key.role, null) : minterRole(t.loginIssuers, issuer, key.groups);
    return cap ? { ok: true, cap, followsGroups: key.groups !== null } : { ok: false, state: 'minter-no-role' };
  }
  if (minter.startsWith('key:')) {
    const [row] = await db.query<ApiKeyRow>('SELECT name, hash, role, revoked_at, expires_at, minted_by, minter_groups FROM api_keys WHERE id = ?', [minter.slice('key:'.length)]);
    if (!row) return { ok: false, state: 'minter-untrusted' };
    const standing = await apiKeyStanding(db, row, now, depth);
    return standing.ok ? { ok: true, cap: standing.role, followsGroups: standing.followsGroups, endsAt: standing.endsAt } : { ok: false, state: standing.state };
  }
  return { ok: false, state: 'minter-untrusted' };
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

/**
 * Whether the minter of a link (or of the session it opened) is still trusted by this process, and
 * the most the link's role may be now: for a link minted by a key, what that key has now (narrowed
 * by the sign-in behind it, if any: apiKeyStanding). Links minted by an issuer's sign-in are
 * narrowed by currentRole (role-mapping.ts) from the groups the link keeps; others have no cap.
 */
export type LinkMinterStanding = { ok: true; cap?: Role } | { ok: false };

export async function linkMinterStanding(db: Db, minter: string): Promise<LinkMinterStanding> {
  const s = await minterStanding(db, minter, undefined, Date.now(), 0);
  return s.ok ? { ok: true, cap: s.cap } : { ok: false };
}

/**
 * Whether a dashboard session's issuer is trusted by this process: a login.oidc issuer configured
 * here, or a link whose minter still is (with the cap linkMinterStanding gives). Anything else (an
 * issuer removed from this process's configuration, links from before minters were recorded) is
 * refused.
 */
export async function sessionIssuerStanding(db: Db, issuer: string): Promise<LinkMinterStanding> {
  if (issuer.startsWith(LINK_ISSUER_PREFIX)) return linkMinterStanding(db, issuer.slice(LINK_ISSUER_PREFIX.length));
  return { ok: configuredTrust(db).loginIssuers.has(issuer) };
}
