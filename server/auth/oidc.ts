import { createRemoteJWKSet, jwtVerify, decodeJwt, type JWTPayload } from 'jose';
import type { OidcIssuerConfig } from '../config.js';
import type { Principal } from './principal.js';
import { linearRegex, type LinearRegex } from '../../src/core/linear-regex.js';

/** A day: longer than GitHub's tokens (6 h) and GitLab's default job timeout (its ID tokens live as long as the job's timeout). */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 86_400;

export type OidcResult = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * Verifies CI OIDC tokens (GitHub Actions, GitLab CI): signature against the issuer's JWKS
 * (fetched once and cached by jose), issuer exact, audience, expiry (required), then the configured claim
 * rules — an exact value, or `/pattern/` matched anchored.
 */
export class OidcVerifier {
  private jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(private readonly issuers: OidcIssuerConfig[]) {}

  async verify(token: string): Promise<OidcResult> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return { ok: false, reason: 'not a JWT' };
    }
    const candidates = this.issuers.filter((i) => i.issuer === iss);
    if (candidates.length === 0) return { ok: false, reason: `issuer ${JSON.stringify(iss)} is not trusted` };
    // Several entries may name one issuer (one per repository or role): the first whose audience,
    // signature and claim rules all hold gives the role.
    let reason = '';
    for (const cfg of candidates) {
      let payload: JWTPayload;
      try {
        // exp is required: jose checks it only when present, and a token without one would be a
        // bearer credential good forever (leaked from a job log, it would still deploy years later).
        ({ payload } = await jwtVerify(token, this.keysFor(cfg), { issuer: cfg.issuer, audience: cfg.audience, clockTolerance: 30, requiredClaims: ['exp'] }));
      } catch (e) {
        reason = `token rejected: ${(e as Error).message}`;
        continue;
      }
      // The subject is who the audit says acted: a token without one audited as "undefined".
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 1024) {
        reason = 'token rejected: sub must be a non-empty string of at most 1024 characters';
        continue;
      }
      // CI tokens live hours (GitHub's say 6 h) or a job's timeout (GitLab, 1 h by default): one
      // signed to live for months is a standing credential if it leaks from a log, whatever its
      // issuer meant. Counted from iat, or from now when iat is missing or in the future (jose
      // checks iat only with maxTokenAge: iat = exp would have made any lifetime zero).
      const now = Math.floor(Date.now() / 1000);
      const issued = typeof payload.iat === 'number' ? Math.min(payload.iat, now) : now;
      const lifetime = (payload.exp as number) - issued;
      if (lifetime > (cfg.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS)) {
        reason = `token rejected: it is valid for ${Math.round(lifetime)} s, longer than this server accepts (oidc[].maxTokenLifetimeSeconds)`;
        continue;
      }
      const broken = Object.entries(cfg.claims ?? {}).find(([claim, rule]) => typeof payload[claim] !== 'string' || !matches(rule, payload[claim] as string));
      if (broken) {
        // What the token carried, never the rule: anyone can have a token of a public CI for this
        // audience, and the rule would tell them which repositories and branches are trusted here.
        reason = `claim ${broken[0]}: ${JSON.stringify(payload[broken[0]] ?? null)} is not allowed here`;
        continue;
      }
      return { ok: true, principal: { kind: 'oidc', id: payload.sub, role: cfg.role, claims: payload as Record<string, unknown> } };
    }
    return { ok: false, reason };
  }

  private keysFor(cfg: OidcIssuerConfig) {
    let set = this.jwks.get(cfg.issuer);
    if (!set) {
      const uri = cfg.jwksUri ?? `${cfg.issuer.replace(/\/$/, '')}/.well-known/jwks`;
      set = createRemoteJWKSet(new URL(uri), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
      this.jwks.set(cfg.issuer, set);
    }
    return set;
  }
}

function matches(rule: string, actual: string): boolean {
  const re = claimRuleRegex(rule);
  // The claim is the token holder's choice (a repository name): RE2, never backtracking; an
  // over-long one never matches (cut, it could match as a prefix: fail closed, as policies do).
  if (re) return actual.length <= 1024 && re.test(actual);
  return rule === actual;
}

/** The configured rules written `/re/`, compiled once each (the config is fixed for the server's life). */
const ruleRegexes = new Map<string, LinearRegex>();

/** A claim rule's pattern when it is written `/re/` (anchored; RE2), else undefined (an exact value). Throws when it does not compile. */
export function claimRuleRegex(rule: string): LinearRegex | undefined {
  if (!(rule.length > 2 && rule.startsWith('/') && rule.endsWith('/'))) return undefined;
  let re = ruleRegexes.get(rule);
  if (!re) {
    re = linearRegex(`^(?:${rule.slice(1, -1)})$`);
    ruleRegexes.set(rule, re);
  }
  return re;
}
