import { describe, expect, it } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findKey, keyValidity, loadTrustStore, parseTrustStore, saveTrustStore, trustStoreDigest, isKeyRevoked } from '../../src/trust/store.js';
import { validateTrustStore } from '../../src/trust/validate.js';
import { TRUST_STORE_SCHEMA } from '../../src/trust/schema.js';
import { CtError } from '../../src/core/errors.js';
import type { TrustStore } from '../../src/trust/types.js';
import { MVP_STORE, SCHEMA, entry, group, store, testKey, withTempDir } from './fixtures.js';

function invalid(value: unknown): { code: string; path: unknown; issues: unknown } {
  try {
    validateTrustStore(value);
  } catch (e) {
    if (e instanceof CtError) return { code: e.code, path: e.details.path, issues: e.details.issues };
    throw e;
  }
  throw new Error('store was accepted');
}

describe('trust-store loading', () => {
  it('keeps the embedded schema identical to the reference schema', async () => {
    expect(TRUST_STORE_SCHEMA).toEqual(JSON.parse(await readFile(SCHEMA, 'utf8')));
  });

  it('loads the MVP sample (one log, no thresholds) and finds its builder key', async () => {
    const s = await loadTrustStore(MVP_STORE);
    const id = 'sha256:6842c753f0fc41ed43a00498f6d4b6dfbbfe7ed5516f6e01d4a77dda2ec2f0e0';
    expect(findKey(s, id)?.roles).toEqual(['builders']);
    expect(findKey(s, `sha256:${'0'.repeat(64)}`)).toBeUndefined();
    expect(keyValidity(findKey(s, id)!.key, new Date('2026-11-26T00:00:00Z'))).toBe('valid');
  });

  it('lists every role a key holds', () => {
    const k = testKey();
    const s = store({ keys: { builders: [entry(k)], releasers: [entry(k)] } });
    validateTrustStore(s);
    expect(findKey(s, k.id)?.roles).toEqual(['builders', 'releasers']);
  });

  it('saves atomically and reloads the same document and digest', async () => {
    await withTempDir(async (dir) => {
      const s = store({ keys: { builders: [entry(testKey())] } });
      const p = join(dir, 'ts.json');
      await saveTrustStore(p, s);
      const back = await loadTrustStore(p);
      expect(back).toEqual(s);
      expect(trustStoreDigest(back)).toBe(trustStoreDigest(s));
      expect(trustStoreDigest({ ...s, version: 2 })).not.toBe(trustStoreDigest(s));
    });
  });

  it('reports a file that is not JSON as TRUST_STORE_INVALID at the root', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'bad.json');
      await writeFile(p, '{"version": 1,');
      await expect(loadTrustStore(p)).rejects.toMatchObject({ code: 'TRUST_STORE_INVALID', details: { path: '' } });
    });
  });
});

describe('trust-store validation: one change each, code and JSON path', () => {
  const k = testKey();
  const other = testKey();
  const base = (): TrustStore => store({ keys: { builders: [entry(k)], releasers: [entry(other)] }, thresholds: { release: group([k, other], 2) } });

  it('accepts the base fixture', () => {
    expect(() => validateTrustStore(base())).not.toThrow();
  });

  const cases: [string, (s: TrustStore) => unknown, string][] = [
    ['missing version', (s) => { delete (s as Partial<TrustStore>).version; }, '/version'],
    ['version 0', (s) => { s.version = 0; }, '/version'],
    ['missing keys', (s) => { delete (s as Partial<TrustStore>).keys; }, '/keys'],
    ['unknown algorithm', (s) => { (s.keys.builders[0] as { algorithm: string }).algorithm = 'rsa'; }, '/keys/builders/0/algorithm'],
    ['key id not the SPKI hash', (s) => { s.keys.builders[0].id = `sha256:${'a'.repeat(64)}`; }, '/keys/builders/0/id'],
    ['named key id', (s) => { s.keys.builders[0].id = 'builder-1'; }, '/keys/builders/0/id'],
    ['public key not SPKI', (s) => { s.keys.builders[0].publicKey = Buffer.from('nope').toString('base64'); }, '/keys/builders/0/publicKey'],
    ['P-256 key labelled ed25519', (s) => { s.keys.builders[0].publicKey = 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWHGhszpdu0NxmT/bkJ17twDi/x1D3ztOnWkBV2Kl8/E3vgv7d8sT1ueQFJWIu5bFeQ1AZ0kGPqDvDVhf6SV4Cg=='; }, '/keys/builders/0/publicKey'],
    ['validFrom not a date', (s) => { s.keys.builders[0].validFrom = 'yesterday'; }, '/keys/builders/0/validFrom'],
    ['validUntil before validFrom', (s) => { s.keys.builders[0].validUntil = '2023-01-01T00:00:00Z'; }, '/keys/builders/0/validUntil'],
    ['same key twice in a role', (s) => { s.keys.builders.push(entry(k)); }, '/keys/builders/1/id'],
    ['threshold member unknown', (s) => { s.thresholds!.release.members[1] = `sha256:${'b'.repeat(64)}`; }, '/thresholds/release/members/1'],
    ['threshold member twice', (s) => { s.thresholds!.release.members[1] = k.id; }, '/thresholds/release/members/1'],
    ['k > n', (s) => { s.thresholds!.release.k = 3; }, '/thresholds/release/k'],
    ['n > members', (s) => { s.thresholds!.release.n = 3; }, '/thresholds/release/n'],
    ['k = 0', (s) => { s.thresholds!.release.k = 0; }, '/thresholds/release/k'],
    ['log key not Ed25519', (s) => { s.logs!['log-a'].publicKey = 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWHGhszpdu0NxmT/bkJ17twDi/x1D3ztOnWkBV2Kl8/E3vgv7d8sT1ueQFJWIu5bFeQ1AZ0kGPqDvDVhf6SV4Cg=='; }, '/logs/log-a/publicKey'],
    ['log without url', (s) => { delete s.logs!['log-a'].url; }, '/logs/log-a/url'],
    ['updated not a date-time', (s) => { s.updated = 'today'; }, '/updated'],
    ['revoked key not a digest', (s) => { s.revoked = { keys: ['k1'] }; }, '/revoked/keys/0'],
    ['signature without sig', (s) => { s.signatures = [{ keyid: k.id } as { keyid: string; sig: string }]; }, '/signatures/0/sig'],
  ];
  for (const [name, mutate, path] of cases) {
    it(name, () => {
      const s = base();
      mutate(s);
      const r = invalid(s);
      expect(r.code).toBe('TRUST_STORE_INVALID');
      expect(r.path).toBe(path);
    });
  }

  it('reports every bad field at once (structure stage, then meaning stage)', () => {
    const a = base();
    a.keys.releasers[0].validFrom = 'never';
    (a.keys.builders[0] as { algorithm: string }).algorithm = 'rsa';
    expect((invalid(a).issues as { path: string }[]).map((i) => i.path)).toEqual(
      expect.arrayContaining(['/keys/builders/0/algorithm', '/keys/releasers/0/validFrom']),
    );
    const b = base();
    b.keys.builders[0].id = `sha256:${'a'.repeat(64)}`;
    b.thresholds!.release.k = 5;
    expect((invalid(b).issues as { path: string }[]).map((i) => i.path)).toEqual(
      expect.arrayContaining(['/keys/builders/0/id', '/thresholds/release/k']),
    );
  });

  it('escapes role names in the JSON pointer', () => {
    const s = base();
    s.keys['team/a'] = [{ ...entry(k), id: `sha256:${'c'.repeat(64)}` }];
    expect(invalid(s).path).toBe('/keys/team~1a/0/id');
  });

  it('knows revoked keys', () => {
    const s = base();
    s.revoked = { keys: [k.id] };
    validateTrustStore(s);
    expect(isKeyRevoked(s, k.id)).toBe(true);
    expect(isKeyRevoked(s, other.id)).toBe(false);
  });

  it('parses text through the same validation', () => {
    expect(() => parseTrustStore(JSON.stringify({ ...base(), keys: [] }))).toThrow(CtError);
  });
});

describe('key validity windows (validFrom inclusive, validUntil exclusive)', () => {
  const e = entry(testKey(), '2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
  it.each([
    ['2024-12-31T23:59:59.999Z', 'not-yet-valid'],
    ['2025-01-01T00:00:00Z', 'valid'],
    ['2025-12-31T23:59:59.999Z', 'valid'],
    ['2026-01-01T00:00:00Z', 'expired'],
    ['2030-01-01T00:00:00Z', 'expired'],
  ])('at %s the key is %s', (at, expected) => {
    expect(keyValidity(e, new Date(at))).toBe(expected);
  });
  it('a key without validUntil never expires', () => {
    expect(keyValidity(entry(testKey(), '2025-01-01T00:00:00Z'), new Date('2999-01-01T00:00:00Z'))).toBe('valid');
  });
  it('uses the current time by default', () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(keyValidity(entry(testKey(), future))).toBe('not-yet-valid');
  });
});
