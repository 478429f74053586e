import { describe, expect, it } from '@jest/globals';
import { signTrustStore, trustStoreSigningBytes, verifyTrustStoreUpdate } from '../../src/trust/update.js';
import { bumpVersion, addKey } from '../../src/trust/edit.js';
import { validateTrustStore } from '../../src/trust/validate.js';
import type { TrustStore } from '../../src/trust/types.js';
import { entry, group, store, testKey, type TestKey } from './fixtures.js';
import { codeOf } from '../support/error-code.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const [u1, u2, u3, builder, late] = [testKey(), testKey(), testKey(), testKey(), testKey()];

function current(k?: number, updaters: TestKey[] = [u1, u2, u3]): TrustStore {
  const s = store({
    version: 3,
    keys: { 'trust-store-updaters': updaters.map((u) => entry(u)), builders: [entry(builder)] },
    thresholds: k ? { 'trust-store-updaters': group(updaters, k) } : {},
  });
  validateTrustStore(s);
  return s;
}

function next(cur: TrustStore, version = cur.version + 1): TrustStore {
  const n = addKey(bumpVersion(cur, NOW), 'builders', late.publicKey, { now: NOW });
  return { ...n, version };
}

function signed(s: TrustStore, ...keys: TestKey[]): TrustStore {
  return keys.reduce((acc, k) => signTrustStore(acc, k.privateKey), s);
}


describe('signTrustStore', () => {
  it('signs the JCS form without signatures, so signers are independent of order', () => {
    const n = next(current());
    const ab = signed(n, u1, u2);
    const ba = signed(n, u2, u1);
    expect(trustStoreSigningBytes(ab)).toEqual(trustStoreSigningBytes(n));
    expect(new Set(ab.signatures!.map((s) => s.sig))).toEqual(new Set(ba.signatures!.map((s) => s.sig)));
    validateTrustStore(ab);
  });

  it('replaces an earlier signature by the same key', () => {
    expect(signed(next(current()), u1, u1).signatures).toHaveLength(1);
  });
});

describe('verifyTrustStoreUpdate', () => {
  it('accepts a newer store signed by one updater when no threshold is set (k = 1)', () => {
    const cur = current();
    expect(verifyTrustStoreUpdate(cur, signed(next(cur), u2), NOW)).toMatchObject({ k: 1, signers: [u2.id], fromVersion: 3, toVersion: 4 });
  });

  it('rejects replaying an older or equal version, even when validly signed', () => {
    const cur = current();
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(next(cur, 3), u1, u2, u3), NOW))).toBe('TRUST_STORE_ROLLBACK');
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(next(cur, 2), u1, u2, u3), NOW))).toBe('TRUST_STORE_ROLLBACK');
  });

  it('rejects an unsigned store', () => {
    const cur = current();
    expect(codeOf(() => verifyTrustStoreUpdate(cur, next(cur), NOW))).toBe('TRUST_STORE_UNSIGNED');
  });

  it('ignores a signature by a key that is not an updater', () => {
    const cur = current();
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(next(cur), builder), NOW))).toBe('TRUST_STORE_UNSIGNED');
    const r = verifyTrustStoreUpdate(cur, signed(next(cur), builder, u1), NOW);
    expect(r.signers).toEqual([u1.id]);
    expect(r.rejected).toEqual([{ keyid: builder.id, reason: 'not-an-updater' }]);
  });

  it('ignores updaters named only by the NEXT store', () => {
    const cur = current();
    const n = addKey(next(cur), 'trust-store-updaters', late.publicKey, { now: NOW });
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(n, late), NOW))).toBe('TRUST_STORE_UNSIGNED');
  });

  it('rejects 1 of 2 when k = 2, and a duplicated signature counts once', () => {
    const cur = current(2);
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(next(cur), u1), NOW))).toBe('THRESHOLD_NOT_MET');
    const s = signed(next(cur), u1);
    const dup = { ...s, signatures: [...s.signatures!, ...s.signatures!] };
    expect(codeOf(() => verifyTrustStoreUpdate(cur, dup, NOW))).toBe('THRESHOLD_NOT_MET');
  });

  it('accepts 2 of 3 when k = 2', () => {
    const cur = current(2);
    expect(verifyTrustStoreUpdate(cur, signed(next(cur), u1, u3), NOW)).toMatchObject({ k: 2, signers: [u1.id, u3.id] });
  });

  it('does not count an expired updater', () => {
    const cur = current(2);
    cur.keys['trust-store-updaters'][2] = entry(u3, '2024-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(next(cur), u1, u3), NOW))).toBe('THRESHOLD_NOT_MET');
  });

  it('does not count a signature over different content', () => {
    const cur = current();
    const s = signed(next(cur), u1);
    const tampered = { ...s, keys: { ...s.keys, builders: [] } };
    expect(codeOf(() => verifyTrustStoreUpdate(cur, tampered, NOW))).toBe('TRUST_STORE_UNSIGNED');
  });

  it('rejects a store with another id', () => {
    const cur = current();
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed({ ...next(cur), id: 'other' }, u1), NOW))).toBe('TRUST_STORE_INVALID');
  });

  it('rejects when the current store names no updaters', () => {
    const cur = store({ keys: { builders: [entry(builder)] } });
    expect(codeOf(() => verifyTrustStoreUpdate(cur, signed(next(cur), builder), NOW))).toBe('TRUST_STORE_UNSIGNED');
  });
});
