import { describe, expect, it } from '@jest/globals';
import { assertThreshold, evaluateThreshold } from '../../src/trust/thresholds.js';
import { validateTrustStore } from '../../src/trust/validate.js';
import type { TrustStore } from '../../src/trust/types.js';
import { entry, group, store, testKey } from './fixtures.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const [a, b, c, expired, outsider] = [testKey(), testKey(), testKey(), testKey(), testKey()];

function releaseStore(k: number): TrustStore {
  const s = store({
    keys: {
      releasers: [entry(a), entry(b), entry(c), entry(expired, '2024-01-01T00:00:00Z', '2026-01-01T00:00:00Z')],
      builders: [entry(outsider)],
    },
    thresholds: { releasers: group([a, b, c, expired], k) },
  });
  validateTrustStore(s);
  return s;
}

describe('evaluateThreshold', () => {
  it('is met by k distinct valid members', () => {
    const r = evaluateThreshold(releaseStore(2), 'releasers', [a.id, b.id], NOW);
    expect(r).toMatchObject({ met: true, k: 2, distinct: 2 });
    expect(r.members).toHaveLength(4);
  });

  it('counts a duplicated signer once', () => {
    const r = evaluateThreshold(releaseStore(2), 'releasers', [a.id, a.id, a.id], NOW);
    expect(r).toMatchObject({ met: false, distinct: 1 });
    expect(r.ignored).toEqual([{ keyId: a.id, reason: 'duplicate' }, { keyId: a.id, reason: 'duplicate' }]);
  });

  it('does not count non-members, even keys of the store', () => {
    const r = evaluateThreshold(releaseStore(2), 'releasers', [a.id, outsider.id], NOW);
    expect(r).toMatchObject({ met: false, distinct: 1 });
    expect(r.ignored).toEqual([{ keyId: outsider.id, reason: 'not-a-member' }]);
  });

  it('does not count an expired member', () => {
    const r = evaluateThreshold(releaseStore(2), 'releasers', [a.id, expired.id], NOW);
    expect(r).toMatchObject({ met: false, distinct: 1 });
    expect(r.ignored).toEqual([{ keyId: expired.id, reason: 'expired' }]);
    // …which counted while it was valid
    expect(evaluateThreshold(releaseStore(2), 'releasers', [a.id, expired.id], new Date('2025-06-01T00:00:00Z')).met).toBe(true);
  });

  it('does not count a revoked member', () => {
    const s = releaseStore(2);
    s.revoked = { keys: [b.id] };
    const r = evaluateThreshold(s, 'releasers', [a.id, b.id], NOW);
    expect(r).toMatchObject({ met: false, distinct: 1 });
    expect(r.ignored).toEqual([{ keyId: b.id, reason: 'revoked' }]);
  });

  it('does not count a member that is not yet valid', () => {
    const s = releaseStore(1);
    s.keys.releasers[0] = entry(a, '2027-01-01T00:00:00Z');
    expect(evaluateThreshold(s, 'releasers', [a.id], NOW)).toMatchObject({ met: false, ignored: [{ keyId: a.id, reason: 'not-yet-valid' }] });
  });

  it('fails closed on an unknown group', () => {
    expect(() => evaluateThreshold(releaseStore(1), 'nobody', [a.id], NOW)).toThrow(expect.objectContaining({ code: 'THRESHOLD_NOT_MET' }));
  });

  it('assertThreshold throws THRESHOLD_NOT_MET below k and returns the result at k', () => {
    expect(() => assertThreshold(releaseStore(3), 'releasers', [a.id, b.id], NOW)).toThrow(expect.objectContaining({ code: 'THRESHOLD_NOT_MET' }));
    expect(assertThreshold(releaseStore(3), 'releasers', [c.id, b.id, a.id], NOW).counted).toEqual([c.id, b.id, a.id]);
  });
});
