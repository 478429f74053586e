import type { Db } from '../store/db.js';
import type { Principal } from './principal.js';

/**
 * Bearer tokens that authenticated recently → who they are, so that a client calling in a loop
 * (a CI job, an admission controller, `/api/v1/verify` under load) costs one database lookup or
 * one JWT signature check per few seconds instead of one per request.
 *
 * - Keyed by the exact token string: a token differing in one byte is a different entry, checked in
 *   full. Only tokens that passed the complete check are stored; failures never are.
 * - An entry lives at most MAX_AGE_MS and never past the token's own expiry (a JWT's `exp`, without
 *   the verifier's clock tolerance): a revoked API key stops working within MAX_AGE_MS.
 * - One cache per database (a server), bounded: past MAX_ENTRIES the oldest half is dropped.
 */
export const TOKEN_CACHE_MAX_AGE_MS = 5_000;
const MAX_ENTRIES = 10_000;
const MAX_TOKEN_LENGTH = 8_192;

interface Entry {
  principal: Principal;
  until: number;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  /**
   * Bumped by every forget: a lookup that started before a revocation (PostgreSQL answers
   * asynchronously) must not store what it read afterwards, or the revoked key's children
   * would be remembered for MAX_AGE_MS after the revocation answered.
   */
  private generation = 0;

  /** Pass to set(): a check that started before the latest forget stores nothing. */
  get epoch(): number {
    return this.generation;
  }

  /** The principal of a token that passed its check less than MAX_AGE_MS ago and has not expired. */
  get(token: string, now = Date.now()): Principal | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    if (e.until > now) return e.principal;
    this.entries.delete(token);
    return undefined;
  }

  /** `expiresAt`: when the token itself stops being accepted (ms since the epoch), if it does. */
  set(token: string, principal: Principal, expiresAt = Infinity, now = Date.now(), epoch = this.generation): void {
    if (token.length > MAX_TOKEN_LENGTH || epoch !== this.generation) return;
    const until = Math.min(now + TOKEN_CACHE_MAX_AGE_MS, expiresAt);
    if (!(until > now)) return;
    if (this.entries.size >= MAX_ENTRIES) {
      let drop = MAX_ENTRIES / 2;
      for (const k of this.entries.keys()) {
        this.entries.delete(k);
        if (--drop === 0) break;
      }
    }
    this.entries.set(token, { principal: Object.freeze({ ...principal }), until });
  }

  /**
   * Forgets every token of one kind (API keys, when one is revoked here): a revoked key, and every
   * key it minted, stops working in this process at once, other replicas within MAX_AGE_MS. Those
   * minted keys are not known here without a lookup per entry; revocations are rare, and each key
   * still cached is checked again on its next use.
   */
  forgetKind(kind: Principal['kind']): void {
    this.generation++;
    for (const [k, e] of this.entries) if (e.principal.kind === kind) this.entries.delete(k);
  }
}

const caches = new WeakMap<Db, TokenCache>();

/** The token cache of the server using this database. */
export function tokenCacheFor(db: Db): TokenCache {
  let c = caches.get(db);
  if (!c) caches.set(db, (c = new TokenCache()));
  return c;
}
