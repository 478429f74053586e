/** The stored /api/v1/verify answers and remembered tokens: what invalidates them, and their bounds. */
import { describe, expect, it } from '@jest/globals';
import { VerdictCache, nextTimeBound, type VerdictStamp } from '../../../server/verify/verdict-cache.js';
import { TOKEN_CACHE_MAX_AGE_MS, TokenCache } from '../../../server/auth/token-cache.js';
import { PolicySet } from '../../../src/policy/policy-set.js';
import type { TrustMaterial } from '../../../src/verify/report.js';
import type { CompiledPolicy } from '../../../src/policy/types.js';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const trust = (keys: { validFrom: string; validUntil?: string }[] = []): TrustMaterial => ({
  storeDigest: 'sha256:x',
  store: { version: 1, keys: { deployers: keys.map((k, i) => ({ id: `k${i}`, algorithm: 'ed25519', publicKey: '', ...k })) } } as unknown as TrustMaterial['store'],
});
const policies = (expires?: number) => new PolicySet([{ name: 'p', mode: 'strict', match: {}, ...(expires ? { expires: { time: expires, text: '', at: {} } } : {}) } as unknown as CompiledPolicy]);
const body = Buffer.from('{"decision":"ALLOW"}');

describe('verdict cache', () => {
  it('answers only while the trust, the policy set and the VSAs are those the answer was computed with', () => {
    let stamp: VerdictStamp = { trust: trust(), policies: policies(), vsas: 0 };
    const cache = new VerdictCache(() => stamp);
    cache.set('k', cache.stamp(), { 'content-type': 'application/json' }, body, NOW);
    expect(cache.get('k', NOW + 1)?.body).toBe(body);
    expect(cache.get('other', NOW + 1)).toBeUndefined();
    // A VSA recorded: the answer (policy input verifiedIn) may differ.
    stamp = { ...stamp, vsas: 1 };
    expect(cache.get('k', NOW + 1)).toBeUndefined();
    cache.set('k', cache.stamp(), {}, body, NOW);
    stamp = { ...stamp, policies: policies() }; // a reload, even of identical policies
    expect(cache.get('k', NOW + 1)).toBeUndefined();
    cache.set('k', cache.stamp(), {}, body, NOW);
    stamp = { ...stamp, trust: trust() };
    expect(cache.get('k', NOW + 1)).toBeUndefined();
  });

  it('does not keep an answer computed across a change (the stamp is taken before computing)', () => {
    let stamp: VerdictStamp = { trust: trust(), policies: policies(), vsas: 0 };
    const cache = new VerdictCache(() => stamp);
    const before = cache.stamp();
    stamp = { ...stamp, vsas: 1 }; // recorded while the answer was being computed
    cache.set('k', before, {}, body, NOW);
    expect(cache.get('k', NOW + 1)).toBeUndefined();
  });

  it('keeps nothing when VSAs may change elsewhere (PostgreSQL), without trust or without policies', () => {
    for (const stamp of [{ trust: trust(), policies: policies(), vsas: undefined }, { trust: undefined, policies: policies(), vsas: 0 }, { trust: trust(), policies: undefined, vsas: 0 }]) {
      const cache = new VerdictCache(() => stamp);
      cache.set('k', stamp, {}, body, NOW);
      expect(cache.size).toBe(0);
      expect(cache.get('k', NOW)).toBeUndefined();
    }
  });

  it('stops at the next instant the clock alone changes a decision: a policy expiry, a key validity bound, else 60 s', () => {
    const expiry = NOW + 10_000;
    const stamp: VerdictStamp = { trust: trust([{ validFrom: '2020-01-01T00:00:00Z', validUntil: new Date(NOW + 20_000).toISOString() }, { validFrom: new Date(NOW + 5_000).toISOString() }]), policies: policies(expiry), vsas: 0 };
    expect(nextTimeBound(stamp, NOW)).toBe(NOW + 5_000);
    expect(nextTimeBound(stamp, NOW + 5_000)).toBe(expiry);
    expect(nextTimeBound(stamp, expiry)).toBe(NOW + 20_000);
    expect(nextTimeBound(stamp, NOW + 20_000)).toBe(Infinity);
    const cache = new VerdictCache(() => stamp);
    cache.set('k', stamp, {}, body, NOW);
    expect(cache.get('k', NOW + 4_999)).toBeDefined();
    expect(cache.get('k', NOW + 5_000)).toBeUndefined();
    const plain: VerdictStamp = { trust: trust(), policies: policies(), vsas: 0 };
    const c2 = new VerdictCache(() => plain);
    c2.set('k', plain, {}, body, NOW);
    expect(c2.get('k', NOW + 59_999)).toBeDefined();
    expect(c2.get('k', NOW + 60_000)).toBeUndefined();
    // An already expired policy is not a future bound.
    expect(nextTimeBound({ ...plain, policies: policies(NOW - 1) }, NOW)).toBe(Infinity);
  });

  it('is bounded in entries and in key size', () => {
    const stamp: VerdictStamp = { trust: trust(), policies: policies(), vsas: 0 };
    const cache = new VerdictCache(() => stamp);
    for (let i = 0; i < 1100; i++) cache.set(`k${i}`, stamp, {}, body, NOW);
    expect(cache.size).toBe(1024);
    expect(cache.get('k0', NOW)).toBeUndefined();
    expect(cache.get('k1099', NOW)).toBeDefined();
    cache.set('x'.repeat(5000), stamp, {}, body, NOW);
    expect(cache.get('x'.repeat(5000), NOW)).toBeUndefined();
  });
});

describe('token cache', () => {
  const who = { kind: 'oidc' as const, id: 'repo:acme/app', role: 'viewer' as const };
  it('remembers a token for at most a few seconds and never past its own expiry, by its exact bytes', () => {
    const c = new TokenCache();
    c.set('tok', who, Infinity, NOW);
    expect(c.get('tok', NOW + TOKEN_CACHE_MAX_AGE_MS - 1)).toEqual(who);
    expect(c.get('tok', NOW + TOKEN_CACHE_MAX_AGE_MS)).toBeUndefined();
    expect(c.get('tok ', NOW)).toBeUndefined();
    c.set('short', who, NOW + 1_000, NOW);
    expect(c.get('short', NOW + 999)).toEqual(who);
    expect(c.get('short', NOW + 1_000)).toBeUndefined();
    c.set('expired', who, NOW, NOW);
    expect(c.get('expired', NOW)).toBeUndefined();
    // What is handed out cannot be changed by whoever receives it.
    expect(Object.isFrozen(c.get('tok', NOW))).toBe(true);
  });

  it('is bounded', () => {
    const c = new TokenCache();
    for (let i = 0; i < 10_001; i++) c.set(`t${i}`, who, Infinity, NOW);
    expect(c.get('t0', NOW)).toBeUndefined();
    expect(c.get('t10000', NOW)).toEqual(who);
    c.set('x'.repeat(9000), who, Infinity, NOW);
    expect(c.get('x'.repeat(9000), NOW)).toBeUndefined();
  });
});
