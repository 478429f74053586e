import type { Role } from '../config.js';
import { LINK_ISSUER_PREFIX, grantsOf } from './principal.js';

/** A login.oidc issuer's group → role mapping (server/config.ts). */
export type GroupRoles = Readonly<Record<string, Role>>;

/** When a person is in several mapped groups, the most capable role wins, in this order. */
export const PRECEDENCE: readonly Role[] = ['admin', 'operator', 'auditor', 'viewer'];

/** The role a person in `groups` gets from `mapping`, as at sign-in; undefined: none of them is mapped. */
export function roleForGroups(mapping: GroupRoles, groups: readonly string[]): Role | undefined {
  const granted = new Set(groups.filter((g) => Object.hasOwn(mapping, g)).map((g) => mapping[g]));
  return PRECEDENCE.find((r) => granted.has(r));
}

/**
 * Of a person's groups, those `mapping` names: what a session keeps to re-derive its role later.
 * All of them: the role at sign-in came from all, and keeping only some (the first in the token's
 * order) demoted at the next request someone whose capable group came later. Bounded by the
 * configuration's mapping and by the groups read from the token (server/ui/oidc-login.ts).
 */
export function mappedGroups(mapping: GroupRoles, groups: readonly string[]): string[] {
  return [...new Set(groups.filter((g) => Object.hasOwn(mapping, g)))];
}

/**
 * The most capable role that grants nothing `a` or `b` does not: one of them when one's
 * permissions hold the other's, else the role under both (operator and auditor: viewer).
 * Undefined when either is no role this server knows (a row from another version, or tampered
 * with): it grants nothing, so neither may the result (refused, not viewer).
 */
export function narrowerRole(a: Role, b: Role): Role | undefined {
  const both = grantsOf(a).filter((p) => grantsOf(b).includes(p));
  return PRECEDENCE.find((r) => grantsOf(r).every((p) => both.includes(p)));
}

/**
 * A dashboard session's role now: what it was given at sign-in, narrowed to what the issuer's
 * current mapping gives the groups it recorded, so that narrowing the mapping (a group removed,
 * or given a lesser role) takes effect at the next request rather than at the session's expiry.
 * Never wider than at sign-in: the groups are as the issuer said then, and a mapping widened since
 * is taken at the next sign-in. Several login.oidc entries may name one issuer: the most capable
 * of their answers. A session from before groups were recorded (`groups` null) is narrowed to
 * what the mapping still gives anyone. Undefined: no role any more (the session is refused).
 */
export function sessionRole(mappings: readonly GroupRoles[], signedIn: Role, groups: readonly string[] | null): Role | undefined {
  const now = mappings.flatMap((m) => (groups ? [roleForGroups(m, groups)] : Object.values(m))).filter((r): r is Role => r !== undefined);
  const narrowed = new Set(now.map((r) => narrowerRole(signedIn, r)).filter((r): r is Role => r !== undefined));
  return PRECEDENCE.find((r) => narrowed.has(r));
}

/**
 * What an issuer's sign-in that minted something (a one-time link, an API key) may hand out now:
 * what the groups it signed in with give an admin (minting needs admin) under this process's
 * mapping of that issuer. The one rule for both, so that a link and a key minted by the same
 * person narrow alike. Undefined: the issuer is not configured here, or the groups get no role.
 */
export function minterRole(loginIssuers: ReadonlyMap<string, readonly GroupRoles[]>, issuer: string, groups: readonly string[] | null): Role | undefined {
  const mappings = loginIssuers.get(issuer);
  return mappings ? sessionRole(mappings, 'admin', groups) : undefined;
}

/** Groups as stored (a JSON list): null when none were (before they were); not a list of strings: none (fails closed). */
export function storedGroups(v: string | null | undefined): string[] | null {
  if (v === null || v === undefined) return null;
  try {
    const list: unknown = JSON.parse(v);
    return Array.isArray(list) ? list.filter((g): g is string => typeof g === 'string') : [];
  } catch {
    return [];
  }
}

/** Links minted by a login.oidc sign-in name their minter `issuer:<issuer>` (configured-trust.ts). */
const ISSUER_LINK_PREFIX = `${LINK_ISSUER_PREFIX}issuer:`;

/**
 * The role of a dashboard session (or of a link about to open one, by the issuer its session
 * would have) under this process's login.oidc mappings, now. An issuer's sign-in: sessionRole. A
 * link minted by an issuer's admin: never more than its minter has now, from the groups the
 * minter signed in with (`groups`, copied to the link and its session): an admin whose group is
 * narrowed or removed no longer hands out, through the links they minted, what they lost. Links
 * from an API key, a CI token or the terminal keep their role, but never more than `cap`: what
 * their minter has now (configured-trust.ts linkMinterStanding: a key narrowed by the sign-in that
 * minted it narrows its links too). Undefined: no role any more (refused).
 */
export function currentRole(loginIssuers: ReadonlyMap<string, readonly GroupRoles[]>, issuer: string, role: Role, groups: readonly string[] | null, cap?: Role): Role | undefined {
  const now = uncappedRole(loginIssuers, issuer, role, groups);
  return now && cap !== undefined ? narrowerRole(now, cap) : now;
}

function uncappedRole(loginIssuers: ReadonlyMap<string, readonly GroupRoles[]>, issuer: string, role: Role, groups: readonly string[] | null): Role | undefined {
  if (issuer.startsWith(ISSUER_LINK_PREFIX)) {
    const minter = minterRole(loginIssuers, issuer.slice(ISSUER_LINK_PREFIX.length), groups);
    return minter && narrowerRole(role, minter);
  }
  if (issuer.startsWith(LINK_ISSUER_PREFIX)) return role;
  const mappings = loginIssuers.get(issuer);
  return mappings ? sessionRole(mappings, role, groups) : undefined;
}
