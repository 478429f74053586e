/**
 * Hardening round two (#13): trust material is strict (finding 8), nesting is bounded before any
 * recursive code (finding 7), and one log is one log for a quorum (finding 3).
 */
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { CtError } from '../../src/core/errors.js';
import { keyIdOf, publicKeyFrom, spkiBase64 } from '../../src/trust/keyid.js';
import { parsePublicKey } from '../../src/trust/keys.js';
import { keysInRole, parseTrustStore } from '../../src/trust/store.js';
import { evaluateThreshold } from '../../src/trust/thresholds.js';
import { validateTrustStore } from '../../src/trust/validate.js';
import { entry, group, store, testKey } from './fixtures.js';

function codeAndPath(fn: () => unknown): { code: string; path?: unknown } {
  try {
    fn();
  } catch (e) {
    if (e instanceof CtError) return { code: e.code, path: e.details.path };
    throw e;
  }
  throw new Error('accepted');
}

describe('unknown fields are refused (finding 13.8)', () => {
  it('a key with validUntill (typo) is refused instead of never expiring', () => {
    const k = testKey();
    const s = store({ keys: { builders: [{ ...entry(k), validUntill: '2025-01-01T00:00:00Z' } as never] } });
    expect(codeAndPath(() => validateTrustStore(s))).toEqual({ code: 'TRUST_STORE_INVALID', path: '/keys/builders/0/validUntill' });
  });

  it('unknown fields at the root, in a log and in a threshold group are refused', () => {
    const k = testKey();
    expect(codeAndPath(() => validateTrustStore({ ...store(), extra: 1 }))).toMatchObject({ path: '/extra' });
    const s = store();
    s.logs!['log-a'] = { ...s.logs!['log-a'], weight: 2 } as never;
    expect(codeAndPath(() => validateTrustStore(s))).toMatchObject({ path: '/logs/log-a/weight' });
    const t = store({ keys: { builders: [entry(k)] }, thresholds: { builders: { ...group([k], 1), quorum: 1 } as never } });
    expect(codeAndPath(() => validateTrustStore(t))).toMatchObject({ path: '/thresholds/builders/quorum' });
  });

  it('free-form metadata stays free-form', () => {
    const k = testKey();
    expect(() => validateTrustStore(store({ keys: { builders: [{ ...entry(k), metadata: { owner: 'ci', team: 'x' } }] } }))).not.toThrow();
  });
});

describe('public keys are exactly their DER (finding 13.8)', () => {
  const k = testKey();
  const der = Buffer.from(spkiBase64(k.publicKey), 'base64');
  const padded = Buffer.concat([der, Buffer.from([0, 1, 2, 3])]).toString('base64');
  const paddedId = `sha256:${createHash('sha256').update(Buffer.from(padded, 'base64')).digest('hex')}`;

  it('a trust-store key with trailing bytes is refused (it would be a second id for one key)', () => {
    const s = store({ keys: { builders: [{ ...entry(k), publicKey: padded, id: paddedId }] } });
    expect(codeAndPath(() => validateTrustStore(s))).toEqual({ code: 'TRUST_STORE_INVALID', path: '/keys/builders/0/publicKey' });
  });

  it('a log key with trailing bytes is refused', () => {
    const s = store();
    s.logs!['log-a'].publicKey = padded;
    expect(codeAndPath(() => validateTrustStore(s))).toMatchObject({ path: '/logs/log-a/publicKey' });
  });

  it('parsePublicKey and publicKeyFrom refuse trailing bytes (KEY_INVALID) and accept the exact DER', () => {
    expect(codeAndPath(() => parsePublicKey(padded))).toMatchObject({ code: 'KEY_INVALID' });
    expect(codeAndPath(() => publicKeyFrom(padded))).toMatchObject({ code: 'KEY_INVALID' });
    expect(keyIdOf(parsePublicKey(spkiBase64(k.publicKey)))).toBe(k.id);
  });

  it('so one key cannot be two threshold members', () => {
    const a = testKey();
    const s = store({ keys: { releasers: [entry(a), { ...entry(a), publicKey: padded, id: paddedId }] }, thresholds: { releasers: { k: 2, n: 2, algorithm: 'frost-ed25519', members: [a.id, paddedId] } } });
    expect(() => validateTrustStore(s)).toThrow(expect.objectContaining({ code: 'TRUST_STORE_INVALID' }));
  });
});

describe('ids such as __proto__ are unknown ids (finding 13.8)', () => {
  it('a parsed store answers __proto__ and constructor as absent', () => {
    const s = parseTrustStore(JSON.stringify(store()));
    for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect((s.logs as Record<string, unknown>)[id]).toBeUndefined();
      expect(keysInRole(s, id)).toEqual([]);
      expect(() => evaluateThreshold(s, id, [])).toThrow(expect.objectContaining({ code: 'THRESHOLD_NOT_MET', details: expect.objectContaining({ reason: 'unknown-group' }) }));
    }
    // Also for a store built in code (with prototypes).
    expect(keysInRole(store(), 'constructor')).toEqual([]);
  });

  it('a threshold group named __proto__ or constructor is an unknown role, not a TypeError (found by test/trust/fuzz.test.ts)', () => {
    const k = testKey();
    for (const id of ['__proto__', 'constructor']) {
      const text = JSON.stringify(store({ keys: { builders: [entry(k)] } })).replace('"thresholds":{', `"thresholds":{"${id}":${JSON.stringify(group([k], 1))}`);
      expect(Object.keys(parseTrustStore(text).thresholds ?? {})).toEqual([id]);
    }
  });

  it('a log literally named __proto__ in the file is kept as that log', () => {
    const text = JSON.stringify(store()).replace('"log-a"', '"__proto__"');
    const s = parseTrustStore(text);
    expect(Object.keys(s.logs!)).toEqual(['__proto__']);
    expect(Object.hasOwn(s.logs!, '__proto__')).toBe(true);
  });
});

describe('deep JSON is refused before recursion (finding 13.7)', () => {
  it('a deeply nested trust store is TRUST_STORE_INVALID, not a stack overflow', () => {
    // Free-form key metadata, 100,000 levels deep: JSON.parse and the schema take it, the JCS
    // digest (recursive) would overflow the stack.
    const k = testKey();
    const s = JSON.stringify(store({ keys: { builders: [{ ...entry(k), metadata: { x: 0 } }] } }));
    const deep = s.replace('{"x":0}', `${'{"x":'.repeat(100_000)}0${'}'.repeat(100_000)}`);
    expect(codeAndPath(() => parseTrustStore(deep))).toEqual({ code: 'TRUST_STORE_INVALID', path: '' });
  });

  it('nesting inside strings does not count', () => {
    const s = store();
    s.id = '['.repeat(500);
    expect(parseTrustStore(JSON.stringify(s)).id).toBe(s.id);
  });
});

describe('one log is counted once (finding 13.3)', () => {
  it('the same log key under two ids and operator names is refused', () => {
    const s = store();
    s.logs!['log-b'] = { ...s.logs!['log-a'], operator: 'Op B', url: 'https://log-b.example' };
    expect(codeAndPath(() => validateTrustStore(s))).toEqual({ code: 'TRUST_STORE_INVALID', path: '/logs/log-b/publicKey' });
  });

  it('the same log URL under two ids is refused (case and trailing slash do not make it another log)', () => {
    const s = store();
    s.logs!['log-b'] = { operator: 'Op B', publicKey: spkiBase64(testKey().publicKey), url: 'HTTPS://LOG-A.example/', algorithm: 'ed25519' };
    expect(codeAndPath(() => validateTrustStore(s))).toEqual({ code: 'TRUST_STORE_INVALID', path: '/logs/log-b/url' });
  });
});
