// Which deploy VSAs a referrers list keeps and reads (vsa-index.ts), against descriptors as a
// hostile registry or a pusher could list them: dated far in the future, published out of order,
// created at the same instant.
import { describe, expect, it } from '@jest/globals';
import { MAX_VSAS, newestFirst, supersededBy, toRead, withVsa } from '../../src/oci/vsa-index.js';
import { VSA_ARTIFACT_TYPE } from '../../src/attest/vsa.js';
import { MT, type Descriptor } from '../../src/oci/media-types.js';

const KEY = 'a1'.repeat(32);
const FAR = '9999-12-31T23:59:59Z';
const d = (i: number, env: string, created?: string, key = KEY): Descriptor => ({
  mediaType: MT.imageManifest, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 1, artifactType: VSA_ARTIFACT_TYPE,
  annotations: { 'dev.cerro-torre.vsa.environment': env, 'dev.cerro-torre.vsa.verifier': key, ...(created ? { 'org.opencontainers.image.created': created } : {}) },
});
const iso = (msFromNow: number) => new Date(Date.now() + msFromNow).toISOString();

describe('a creation time far ahead of the clock counts as none', () => {
  it('31 VSAs dated 9999 do not evict another environment\'s real VSA from the tag index', () => {
    const fakes = Array.from({ length: 31 }, (_, i) => d(100 + i, `fake-${i}`, FAR, 'ff'.repeat(32)));
    const staging = d(1, 'staging', iso(-60_000));
    const production = d(2, 'production', iso(0));
    const out = withVsa([...fakes, staging], production);
    expect(out).toContain(staging);
    expect(out).toContain(production);
    expect(out).toHaveLength(MAX_VSAS);
  });

  it('32 VSAs dated 9999 do not keep the real one from being read; one a minute ahead still counts', () => {
    const fakes = Array.from({ length: 32 }, (_, i) => d(100 + i, 'staging', FAR));
    const real = d(1, 'staging', iso(-3_600_000));
    expect(toRead([real, ...fakes])[0]).toBe(real);
    expect(newestFirst([real, ...fakes])[0]).toBe(real);
    const ahead = d(2, 'staging', iso(60_000));
    expect(newestFirst([real, ahead])[0]).toBe(ahead);
  });

  it('fetchVsas\'s choice: the newest of each environment and key first, then the rest up to 32', () => {
    const many = Array.from({ length: 40 }, (_, i) => d(100 + i, 'staging', iso(-i * 1000)));
    const production = d(1, 'production', iso(-3_600_000));
    const other = d(2, 'staging', iso(-7_200_000), 'b2'.repeat(32));
    const read = toRead([production, other, ...many]);
    expect(read).toHaveLength(MAX_VSAS);
    expect(read).toContain(production);
    expect(read).toContain(other);
    expect(read[0]).toBe(many[0]);
    // Newest first among those picked.
    expect(read.slice(-2)).toEqual([production, other]);
  });
});

describe('supersession is by creation time, strictly', () => {
  it('an older VSA published after a newer one does not replace it in the tag index (nor is it put in)', () => {
    const newer = d(1, 'staging', '2026-01-01T00:10:00Z');
    const older = d(2, 'staging', '2026-01-01T00:05:00Z');
    const production = d(3, 'production', '2026-01-01T00:01:00Z');
    expect(withVsa([production, newer], older)).toEqual([production, newer]);
    expect(supersededBy([newer], older)).toEqual([]);
    // In order, the newer replaces the older.
    expect(withVsa([production, older], newer)).toEqual([production, newer]);
    expect(supersededBy([older], newer)).toEqual([older]);
  });

  it('two VSAs of one series created at the same instant: neither replaces nor deletes the other', () => {
    const a = d(1, 'staging', '2026-01-01T00:10:00Z');
    const b = d(2, 'staging', '2026-01-01T00:10:00.000Z');
    expect(withVsa([a], b)).toEqual([a, b]);
    expect(withVsa([b], a)).toEqual([b, a]);
    expect(supersededBy([a], b)).toEqual([]);
    expect(supersededBy([b], a)).toEqual([]);
  });
});
