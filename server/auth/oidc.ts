import { createRemoteJWKSet, jwtVerify, decodeJwt, type JWTPayload } from 'jose';
import type { OidcIssuerConfig } from '../config.js';
import type { Principal } from './principal.js';

export type OidcResult = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * Verifies CI OIDC tokens (GitHub Actions, GitLab CI): signature against the issuer's JWKS
 * (fetched once and cached by jose), issuer exact, audience, expiry, then the configured claim
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
    const cfg = this.issuers.find((i) => i.issuer === iss);
    if (!cfg) return { ok: false, reason: `issuer ${JSON.stringify(iss)} is not trusted` };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keysFor(cfg), { issuer: cfg.issuer, audience: cfg.audience, clockTolerance: 30 }));
    } catch (e) {
      return { ok: false, reason: `token rejected: ${(e as Error).message}` };
    }
    for (const [claim, rule] of Object.entries(cfg.claims ?? {})) {
      const actual = payload[claim];
      if (typeof actual !== 'string' || !matches(rule, actual)) {
        return { ok: false, reason: `claim ${claim}: expected ${rule}, got ${JSON.stringify(actual ?? null)}` };
      }
    }
    return { ok: true, principal: { kind: 'oidc', id: String(payload.sub), role: cfg.role, claims: payload as Record<string, unknown> } };
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
  if (rule.length > 2 && rule.startsWith('/') && rule.endsWith('/')) {
    return new RegExp(`^(?:${rule.slice(1, -1)})$`).test(actual.slice(0, 1024));
  }
  return rule === actual;
}
