/**
 * Every bytes field of a Sigstore bundle must be base64 read to its end (src/verify/sigstore/shape.ts
 * base64ReadToEnd). Node's decoder, which protobuf-specs' fromJSON uses, stops at the first '=' and
 * skips characters outside the alphabet, so `"<payload>=<anything>"` verified as the payload alone
 * while the bundle's digest changed: text nobody signed, riding on a verified bundle. What protobuf
 * JSON allows stays allowed: the URL-safe alphabet and unpadded text.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fc from 'fast-check';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, type SerializedBundle } from '../../src/sign/index.js';
import { SigstoreBundleVerifier } from '../../src/verify/sigstore/index.js';
import { base64ReadToEnd, parseBundleJson, strictBundleFromJSON } from '../../src/verify/sigstore/shape.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { GH_ISSUER, GH_SAN, artifactDigest, keylessOptions, rootOf, samplesDir, statementFor } from './fixtures.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let m: SigstoreMock;
let dsse: SerializedBundle;
const policy = { issuer: GH_ISSUER, subject: GH_SAN };

beforeAll(async () => {
  m = await startSigstoreMock();
  dsse = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
});
afterAll(async () => { await m.close(); });

/** Every bytes field of the mock's bundle (its inclusion proofs have no hashes: the samples below do), as a path and a setter on a copy. */
const BYTES_FIELDS: { path: string; get: (b: Json) => string; set: (b: Json, v: string) => void }[] = [
  { path: '$.dsseEnvelope.payload', get: (b) => b.dsseEnvelope.payload, set: (b, v) => { b.dsseEnvelope.payload = v; } },
  { path: '$.dsseEnvelope.signatures[0].sig', get: (b) => b.dsseEnvelope.signatures[0].sig, set: (b, v) => { b.dsseEnvelope.signatures[0].sig = v; } },
  { path: '$.verificationMaterial.certificate.rawBytes', get: (b) => b.verificationMaterial.certificate.rawBytes, set: (b, v) => { b.verificationMaterial.certificate.rawBytes = v; } },
  { path: '$.verificationMaterial.tlogEntries[0].logId.keyId', get: (b) => b.verificationMaterial.tlogEntries[0].logId.keyId, set: (b, v) => { b.verificationMaterial.tlogEntries[0].logId.keyId = v; } },
  { path: '$.verificationMaterial.tlogEntries[0].canonicalizedBody', get: (b) => b.verificationMaterial.tlogEntries[0].canonicalizedBody, set: (b, v) => { b.verificationMaterial.tlogEntries[0].canonicalizedBody = v; } },
  { path: '$.verificationMaterial.tlogEntries[0].inclusionPromise.signedEntryTimestamp', get: (b) => b.verificationMaterial.tlogEntries[0].inclusionPromise.signedEntryTimestamp, set: (b, v) => { b.verificationMaterial.tlogEntries[0].inclusionPromise.signedEntryTimestamp = v; } },
  { path: '$.verificationMaterial.tlogEntries[0].inclusionProof.rootHash', get: (b) => b.verificationMaterial.tlogEntries[0].inclusionProof.rootHash, set: (b, v) => { b.verificationMaterial.tlogEntries[0].inclusionProof.rootHash = v; } },
  { path: '$.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0].signedTimestamp', get: (b) => b.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0].signedTimestamp, set: (b, v) => { b.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0].signedTimestamp = v; } },
];

function outcome(bundle: Json): { code: string; where?: unknown } {
  // A new verifier each time: nothing cached from the original bundle answers for a variant.
  const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
  try {
    v.verify(JSON.stringify(bundle), { policy, digest: artifactDigest });
    return { code: 'OK' };
  } catch (e) {
    if (e instanceof CtError) return { code: e.code, where: e.details.where };
    throw e;
  }
}

describe('bytes fields of a Sigstore bundle', () => {
  it('the bundle as signed verifies, and every field listed is there, padded or not', () => {
    expect(outcome(dsse as Json).code).toBe('OK');
    for (const f of BYTES_FIELDS) expect(f.get(dsse as Json)?.length).toBeGreaterThan(0);
    // Some field must end in padding, or the "after '='" cases below would test nothing.
    expect(BYTES_FIELDS.some((f) => f.get(dsse as Json).endsWith('='))).toBe(true);
  });

  it('text after the padding, inside the text or past it is MALFORMED_BUNDLE naming the field (the library verifies them)', () => {
    const mutations: [string, (s: string) => string][] = [
      ['junk after the padding', (s) => (s.endsWith('=') ? `${s}QUJD` : `${s}=QUJD`)],
      ['a space inside', (s) => `${s.slice(0, 8)} ${s.slice(8)}`],
      ['a newline at the end', (s) => `${s}\n`],
      ['an early =', (s) => `${s.slice(0, 4)}=${s.slice(4)}`],
      ['a character outside both alphabets', (s) => `${s.slice(0, 12)}.${s.slice(12)}`],
      ['three =', (s) => `${s.replace(/=+$/, '')}===`],
    ];
    for (const f of BYTES_FIELDS) {
      for (const [name, mutate] of mutations) {
        const b = structuredClone(dsse) as Json;
        f.set(b, mutate(f.get(b)));
        expect(JSON.stringify(b)).not.toBe(JSON.stringify(dsse));
        if (name === 'junk after the padding' && f.path === '$.dsseEnvelope.payload') {
          // What this closes: @sigstore/verify accepts the bundle, junk and all.
          expect(() => new Verifier(toTrustMaterial(TrustedRoot.fromJSON(m.trustedRoot))).verify(toSignedEntity(bundleFromJSON(b)), { subjectAlternativeName: GH_SAN, extensions: { issuer: GH_ISSUER } })).not.toThrow();
        }
        expect({ field: f.path, name, ...outcome(b) }).toEqual({ field: f.path, name, code: 'MALFORMED_BUNDLE', where: f.path });
      }
    }
  });

  it('what protobuf JSON allows for bytes still verifies: URL-safe alphabet, no padding', () => {
    for (const f of BYTES_FIELDS) {
      const std = f.get(dsse as Json);
      for (const variant of [Buffer.from(std, 'base64').toString('base64url'), std.replace(/=+$/, '')]) {
        const b = structuredClone(dsse) as Json;
        f.set(b, variant);
        expect({ field: f.path, ...outcome(b) }).toEqual({ field: f.path, code: 'OK' });
      }
    }
  });

  it('public-good bundles: junk after any bytes field, inclusion-proof hashes included, is refused by the strict parse', () => {
    const BYTES_KEYS = new Set(['rawBytes', 'keyId', 'signedEntryTimestamp', 'rootHash', 'hashes', 'canonicalizedBody', 'digest', 'signature', 'payload', 'sig', 'signedTimestamp']);
    for (const sample of ['happy-path-v0.3', 'happy-path-intoto-in-dsse-v3']) {
      const text = readFileSync(join(samplesDir(), sample, 'bundle.sigstore.json'), 'utf8');
      expect(() => strictBundleFromJSON(parseBundleJson(text), true)).not.toThrow();
      // Every string under a bytes key, as the keys leading to it.
      const spots: (string | number)[][] = [];
      const walk = (v: unknown, at: (string | number)[], bytesKey: boolean) => {
        if (typeof v === 'string') {
          if (bytesKey) spots.push(at);
        } else if (Array.isArray(v)) v.forEach((c, i) => walk(c, [...at, i], bytesKey));
        else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, [...at, k], BYTES_KEYS.has(k));
      };
      walk(JSON.parse(text), [], false);
      const show = (at: (string | number)[]) => `$${at.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('')}`;
      expect(spots.map(show)).toContain('$.verificationMaterial.tlogEntries[0].inclusionProof.hashes[0]');
      for (const at of spots) {
        const json = JSON.parse(text);
        const holder = at.slice(0, -1).reduce((o, k) => o[k], json);
        const v = holder[at[at.length - 1]] as string;
        holder[at[at.length - 1]] = v.endsWith('=') ? `${v}QUJD` : `${v}=QUJD`;
        let got: unknown;
        try {
          strictBundleFromJSON(json);
        } catch (e) {
          got = e instanceof CtError ? { code: e.code, where: e.details.where } : e;
        }
        expect({ sample, got }).toEqual({ sample, got: { code: 'MALFORMED_BUNDLE', where: show(at) } });
      }
    }
  });

  it('base64ReadToEnd agrees with "every character is base64 and the bytes re-encode to as many" on random text', () => {
    const oracle = (s: string): boolean => {
      const body = s.replace(/={1,2}$/, '');
      if (!/^[A-Za-z0-9+/_-]*$/.test(body)) return false;
      if (body.length !== s.length && s.length % 4 !== 0) return false;
      return Buffer.from(s, 'base64').toString('base64url').length === body.length;
    };
    const check = (s: string) => expect(base64ReadToEnd(s, Buffer.from(s, 'base64').length)).toBe(oracle(s));
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'AQgw+/=-_ \n.9z'.split('')), maxLength: 14 }), check), { seed: 7, numRuns: 5000 });
    // Valid encodings of random bytes, and the same with one character inserted anywhere.
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(), fc.constantFrom('=', ' ', '\n', '.', 'A', '-'), (bytes, at, c) => {
      const b = Buffer.from(bytes);
      for (const s of [b.toString('base64'), b.toString('base64url')]) {
        expect(base64ReadToEnd(s, b.length)).toBe(true);
        const i = at % (s.length + 1);
        check(`${s.slice(0, i)}${c}${s.slice(i)}`);
      }
    }), { seed: 11, numRuns: 3000 });
  });
});
