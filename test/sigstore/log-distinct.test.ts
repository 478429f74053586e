/** #13 finding 3 for Rekor logs: one log (one key, one URL) counts once, whatever its names. */
import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { tlogOperators, trustedRootFromJSON } from '../../src/verify/sigstore/trusted-root.js';

const start = new Date(Date.now() - 3600_000).toISOString();
const der = (): string => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const tlog = (baseUrl: string, key: string, id: number, operator: string): Record<string, unknown> => ({
  baseUrl,
  hashAlgorithm: 'SHA2_256',
  publicKey: { rawBytes: key, keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
  logId: { keyId: Buffer.alloc(32, id).toString('base64') },
  operator,
});
const root = (tlogs: Record<string, unknown>[]) => trustedRootFromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs, certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] }, 'test');
const distinct = (m: Map<string, { operator: string }>): number => new Set([...m.values()].map((v) => v.operator)).size;

describe('Rekor log distinctness', () => {
  it('the same key under two ids, URLs and operator names is one operator', () => {
    const k = der();
    expect(distinct(tlogOperators(root([tlog('https://rekor-a.example', k, 1, 'Op A'), tlog('https://rekor-b.example', k, 2, 'Op B')])))).toBe(1);
  });

  it('the same URL with two keys and operator names is one operator', () => {
    expect(distinct(tlogOperators(root([tlog('https://rekor.example', der(), 1, 'Op A'), tlog('https://REKOR.example/', der(), 2, 'Op B')])))).toBe(1);
  });

  it('two real logs stay two', () => {
    expect(distinct(tlogOperators(root([tlog('https://rekor-a.example', der(), 1, 'Op A'), tlog('https://rekor-b.example', der(), 2, 'Op B')])))).toBe(2);
  });
});
