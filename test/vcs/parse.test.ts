import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { decodePayloadPae, envelopeDigest, isCanonicalBase64, parseVcsBundle } from '../../src/verify/vcs/parse.js';
import { INTOTO_PAYLOAD_TYPE, pae } from '../../src/attest/dsse.js';
import { attestationDigest, attestationEntryBytes, attestationLogEntry } from '../../src/attest/vcs-bundle.js';
import { canonicalBytes } from '../../src/core/jcs.js';
import { isCtError } from '../../src/core/errors.js';
import { clone, makeBundle, makeKey, MemLog } from '../verify/fixtures.js';

const signer = makeKey();
const other = makeKey();
const log = new MemLog('l', 'L');
const b = makeBundle({ signers: [signer, other], logs: [log] }).bundle;

/** `check` on random base64 encodings, each also with one character replaced and one removed. */
function forMutatedEncodings(check: (s: string) => void, seed: number, numRuns: number): void {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(), fc.constantFrom(...'Aa0+/=-_ .B'.split('')), (bytes, pos, ch) => {
      const s = Buffer.from(bytes).toString('base64');
      check(s);
      if (s.length > 0) {
        const i = pos % s.length;
        check(s.slice(0, i) + ch + s.slice(i + 1));
        check(s.slice(0, i) + s.slice(i + 1));
      }
    }),
    { seed, numRuns },
  );
}

describe('parseVcsBundle', () => {
  it('the fast envelope digest equals the JCS digest, for plain and unusual envelopes', () => {
    const env = b.attestations[0];
    expect(envelopeDigest(env)).toBe(attestationDigest(env));
    const odd = { ...clone(env), extra: { z: 1, a: 'é\u2028' } } as typeof env;
    expect(envelopeDigest(odd)).toBe(attestationDigest(odd));
    const escapes = { ...clone(env), payloadType: 'a"\\\n\u0001é€😀' };
    expect(envelopeDigest(escapes)).toBe(attestationDigest(escapes));
  });
  it('the direct entry bytes equal the JCS of the entry, escapes included', () => {
    for (const pt of ['https://slsa.dev/provenance/v1', 'x"\\\n\u0001é€😀\u2028']) {
      const args = [attestationDigest(b.attestations[0]), 'sha256:' + 'a'.repeat(64), pt, '2026-11-26T00:00:00Z'] as const;
      expect(attestationEntryBytes(...args).equals(canonicalBytes(attestationLogEntry(...args)))).toBe(true);
    }
  });
  it('rejects non-canonical base64 and malformed proof hashes with MALFORMED_BUNDLE', () => {
    const cases: ((x: typeof b) => void)[] = [
      (x) => (x.attestations[0].signatures[0].sig = x.attestations[0].signatures[0].sig.replace(/==$/, '')),
      (x) => (x.attestations[0].payload = `${x.attestations[0].payload}\n`),
      // The URL-safe alphabet: always one '-' (a random signature has no '+' or '/' about one time in 15).
      (x) => (x.logEntries[0].signedEntryTimestamp = `-${x.logEntries[0].signedEntryTimestamp.slice(1).replace(/\+/g, '-').replace(/\//g, '_')}`),
      (x) => (x.logEntries[0].inclusionProof.rootHash = x.logEntries[0].inclusionProof.rootHash.toUpperCase()),
      (x) => (x.logEntries[0].inclusionProof.hashes[0] = x.logEntries[0].inclusionProof.hashes[0].slice(1)),
      (x) => ((x as { version: string }).version = '0.2.0'),
    ];
    for (const f of cases) {
      const x = clone(b);
      f(x);
      expect(JSON.stringify(x)).not.toBe(JSON.stringify(b)); // each case really changes the bundle
      let code: string | undefined;
      try {
        parseVcsBundle(Buffer.from(JSON.stringify(x)));
      } catch (e) {
        if (isCtError(e)) code = e.code;
      }
      expect(code).toBe('MALFORMED_BUNDLE');
    }
  });
  it('isCanonicalBase64 agrees with re-encoding on random strings and mutated encodings', () => {
    const same = (s: string) => {
      const b = Buffer.from(s, 'base64');
      expect(isCanonicalBase64(s, b)).toBe(b.toString('base64') === s);
    };
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'AQgw+/=-_ \n!9z'.split('')), maxLength: 16 }), same), { seed: 42, numRuns: 5000 });
    forMutatedEncodings(same, 7, 5000);
    // 1.2 s alone; 10,000 runs of expect() outlasted the 5 s default once beside the whole suite.
  }, 30_000);
  it('decodes a payload straight into its PAE exactly when it is canonical base64', () => {
    const same = (s: string) => {
      const b = Buffer.from(s, 'base64');
      let got: { pae: Buffer; payload: Buffer } | string;
      try {
        got = decodePayloadPae(s, '$.p');
      } catch (e) {
        got = isCtError(e) ? e.code : String(e);
      }
      if (b.toString('base64') === s) {
        expect(typeof got).toBe('object');
        const { pae: p, payload } = got as { pae: Buffer; payload: Buffer };
        expect(payload.equals(b)).toBe(true);
        expect(p.equals(pae(INTOTO_PAYLOAD_TYPE, b))).toBe(true);
      } else expect(got).toBe('MALFORMED_BUNDLE');
    };
    forMutatedEncodings(same, 11, 3000);
  }, 30_000);

  it('accepts sha256:-prefixed proof hashes', () => {
    const x = clone(b);
    x.logEntries[0].inclusionProof.rootHash = `sha256:${x.logEntries[0].inclusionProof.rootHash}`;
    expect(parseVcsBundle(Buffer.from(JSON.stringify(x))).logEntries[0].rootHash.length).toBe(32);
  });
});
