/**
 * The process-wide memos of trusted-root work (cert-memo.ts): a second verifier for the same root
 * neither re-checks its certificates' signatures nor re-imports their keys, and a hit needs every
 * byte the check reads to be the same (a flipped signature byte is checked again, and fails).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { toTrustMaterial } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { generateKeyPairSync } from 'node:crypto';
import { memoizeTrustedCertVerify, memoTrustMaterial, trustedKey } from '../../src/verify/sigstore/cert-memo.js';

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

  it('builds the log authorities toTrustMaterial builds, each log key imported once per process', () => {
    // The mock's root plus a Rekor log under an RSA PKCS#1 key (the library's 'pkcs1' rule).
    type LogJSON = { baseUrl: string; publicKey: { rawBytes: string; keyDetails: string; validFor?: unknown }; logId: { keyId: string } };
    const json = structuredClone(m.trustedRoot) as unknown as { tlogs: LogJSON[]; ctlogs: LogJSON[] };
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'pkcs1' });
    json.tlogs.push({ baseUrl: 'https://rekor.rsa.example', publicKey: { rawBytes: rsa.toString('base64'), keyDetails: 'PKCS1_RSA_PKCS1V5' }, logId: { keyId: Buffer.alloc(32, 7).toString('base64') } });
    const root = TrustedRoot.fromJSON(json);
    const library = toTrustMaterial(root);
    const ours = memoTrustMaterial(TrustedRoot.fromJSON(structuredClone(json)), undefined);
    const view = (t: typeof library) => [...t.tlogs, ...t.ctlogs].map((l) => ({
      baseURL: l.baseURL, logID: l.logID.toString('hex'), start: l.validFor.start.getTime(), end: l.validFor.end.getTime(),
      key: l.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
    }));
    expect(ours.tlogs).toHaveLength(json.tlogs.length);
    expect(ours.ctlogs.length).toBeGreaterThan(0);
    expect(view(ours)).toEqual(view(library));
    expect(ours.certificateAuthorities.map((c) => c.certChain.length)).toEqual(library.certificateAuthorities.map((c) => c.certChain.length));
    expect(ours.timestampAuthorities.length).toBe(library.timestampAuthorities.length);

    // A second verifier's material for the same root (a trust refresh): the same KeyObjects.
    const again = memoTrustMaterial(TrustedRoot.fromJSON(structuredClone(json)), undefined);
    again.tlogs.forEach((l, i) => expect(l.publicKey).toBe(ours.tlogs[i].publicKey));
    again.ctlogs.forEach((l, i) => expect(l.publicKey).toBe(ours.ctlogs[i].publicKey));
    // A key that does not import fails the construction, as the library's does.
    json.tlogs[0].publicKey.rawBytes = Buffer.from('not a key').toString('base64');
    expect(() => toTrustMaterial(TrustedRoot.fromJSON(structuredClone(json)))).toThrow();
    expect(() => memoTrustMaterial(TrustedRoot.fromJSON(structuredClone(json)), undefined)).toThrow();
  });
});
