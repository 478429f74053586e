/**
 * A key check that started before a revocation stores nothing (server/auth/token-cache.ts): on
 * PostgreSQL a request for a child key could read the chain before `DELETE` revoked its parent and
 * store the child after the cache was cleared, accepted for 5 s more by the server that revoked it.
 */
import { describe, expect, it } from '@jest/globals';
import { TokenCache } from '../../server/auth/token-cache.js';

describe('token cache epochs', () => {
  it('a set() whose check began before forgetKind() is dropped; a later one is kept', () => {
    const cache = new TokenCache();
    const principal = { kind: 'api-key' as const, id: 'child', role: 'viewer' as const };
    const before = cache.epoch;
    cache.forgetKind('api-key');
    cache.set('ctk_child', principal, Infinity, Date.now(), before);
    expect(cache.get('ctk_child')).toBeUndefined();
    cache.set('ctk_child', principal, Infinity, Date.now(), cache.epoch);
    expect(cache.get('ctk_child')).toEqual(principal);
    // Forgetting API keys leaves other kinds alone.
    cache.set('jwt', { kind: 'oidc', id: 'ci', role: 'operator' });
    cache.forgetKind('api-key');
    expect(cache.get('ctk_child')).toBeUndefined();
    expect(cache.get('jwt')).toMatchObject({ kind: 'oidc' });
  });
});
