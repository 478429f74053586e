/**
 * The process-wide memos of trusted-root work (cert-memo.ts): a second verifier for the same root
 * neither re-checks its certificates' signatures nor re-imports their keys, and a hit needs every
 * byte the check reads to be the same (a flipped signature byte is checked again, and fails).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { toTrustMaterial } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { memoizeTrustedCertVerify, trustedKey } from '../../src/verify/sigstore/cert-memo.js';

let m: SigstoreMock;
beforeAll(async () => {
  m = await startSigstoreMock({ caCurve: 'P-384' });
});
afterAll(async () => { await m.close(); });

type RootJSON = { certificateAuthorities: { certChain: { certificates: { rawBytes: string }[] } }[] };

/** The mock's root parsed anew, its CA certificate's verify() counting the checks it really runs. */
function trustFrom(json: unknown): { ca: ReturnType<typeof toTrustMaterial>['certificateAuthorities'][number]['certChain'][number]; runs: () => number } {
  const trust = toTrustMaterial(TrustedRoot.fromJSON(json));
  const ca = trust.certificateAuthorities[0].certChain[0];
  let runs = 0;
  const real = ca.verify.bind(ca);
  ca.verify = (issuer) => {
    runs++;
    return real(issuer);
  };
  memoizeTrustedCertVerify(trust);
  return { ca, runs: () => runs };
}

describe('trusted-root memos across verifier instances', () => {
  it('checks a root certificate once per process for the same bytes, and again for other bytes', () => {
    const first = trustFrom(m.trustedRoot);
    expect(first.ca.verify()).toBe(true);
    expect(first.runs()).toBe(1);

    // Another parse of the same root (a new verifier, a refreshed trust store): no second check.
    const second = trustFrom(structuredClone(m.trustedRoot));
    expect(second.ca.verify()).toBe(true);
    expect(second.runs()).toBe(0);

    // The same root with the last byte of its signature changed: not a hit, checked, refused.
    const json = structuredClone(m.trustedRoot) as unknown as RootJSON;
    const cert = json.certificateAuthorities[0].certChain.certificates[0];
    const der = Buffer.from(cert.rawBytes, 'base64');
    der[der.length - 1] ^= 0x01;
    cert.rawBytes = der.toString('base64');
    const forged = trustFrom(json);
    expect(forged.ca.verify()).toBe(false);
    expect(forged.runs()).toBe(1);
  });

  it('imports a trusted key once per SPKI and never answers another key for other bytes', () => {
    const trust = toTrustMaterial(TrustedRoot.fromJSON(m.trustedRoot));
    const spki = trust.certificateAuthorities[0].certChain[0].publicKey;
    const a = trustedKey(Buffer.from(spki));
    expect(trustedKey(Buffer.from(spki))).toBe(a);
    expect(a.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    const tsa = trust.timestampAuthorities[0].certChain[0].publicKey;
    const b = trustedKey(Buffer.from(tsa));
    expect(b).not.toBe(a);
    expect(b.export({ format: 'der', type: 'spki' }).equals(Buffer.from(tsa))).toBe(true);
  });
});
