/**
 * The first instant after `now` at which a decision may change with the clock alone: a policy's
 * `expires`, a trust-store key's `validFrom` or `validUntil` (deploy VSAs are judged against them
 * at every decision). Caches of decisions (the server's /api/v1/verify answers, admission's
 * verdicts) keep an entry no longer.
 */
import type { PolicySet } from '../policy/policy-set.js';
import type { TrustStore } from '../trust/types.js';

export function nextTimeBound(policies: PolicySet | undefined, store: TrustStore | undefined, now: number): number {
  let next = Infinity;
  const consider = (t: number) => {
    if (t > now && t < next) next = t;
  };
  for (const p of policies?.policies ?? []) if (p.expires) consider(p.expires.time);
  for (const keys of Object.values(store?.keys ?? {})) {
    for (const k of keys) {
      consider(Date.parse(k.validFrom));
      if (k.validUntil !== undefined) consider(Date.parse(k.validUntil));
    }
  }
  return next;
}
