import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { rekorV2DsseEntry } from '../support/sigstore-rekor2.js';
import { signAttestationForCtp, signMessage, type SerializedBundle } from '../../src/sign/index.js';
import { SigstoreBundleVerifier, trustedRootFromJSON, type SigstoreVerifyRequest } from '../../src/verify/sigstore/index.js';
import { CtError } from '../../src/core/errors.js';
import { sha256Digest } from '../../src/core/digest.js';
import { GH_ISSUER, GH_SAN, artifact, artifactDigest, keylessOptions, rootOf, statementFor } from './fixtures.js';

let m: SigstoreMock;
let foreign: SigstoreMock;
let dsse: SerializedBundle;
let message: SerializedBundle;
const policy = { issuer: GH_ISSUER, subject: GH_SAN };

beforeAll(async () => {
  [m, foreign] = await Promise.all([startSigstoreMock(), startSigstoreMock()]);
  dsse = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
  message = await signMessage(artifact, keylessOptions(m, await m.githubToken()));
});
afterAll(async () => { await Promise.all([m.close(), foreign.close()]); });

function codeOf(v: SigstoreBundleVerifier, bundle: unknown, req: SigstoreVerifyRequest): { code: string; details: Record<string, unknown> } {
  try {
    v.verify(JSON.stringify(bundle), req);
  } catch (e) {
    if (e instanceof CtError) return { code: e.code, details: e.details };
    throw e;
  }
  return { code: 'OK', details: {} };
}

const plainVerify = (root: Record<string, unknown>, bundle: unknown, artifactBytes?: Buffer) =>
  new Verifier(toTrustMaterial(TrustedRoot.fromJSON(root))).verify(toSignedEntity(bundleFromJSON(bundle), artifactBytes));

describe('each rejection has its own code and names expected and actual identity', () => {
  it('wrong subject → IDENTITY_MISMATCH with the certificate SAN in the details', () => {
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = codeOf(v, dsse, { policy: { issuer: GH_ISSUER, subject: 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main' }, digest: artifactDigest });
    expect(r.code).toBe('IDENTITY_MISMATCH');
    expect(r.details.actual).toMatchObject({ subject: GH_SAN, issuer: GH_ISSUER });
    expect(r.details.expected).toMatchObject({ subject: 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main' });
  });

  it('wrong issuer → IDENTITY_MISMATCH', () => {
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = codeOf(v, dsse, { policy: { issuer: 'https://gitlab.com', subject: GH_SAN }, digest: artifactDigest });
    expect(r.code).toBe('IDENTITY_MISMATCH');
    expect(r.details.actual).toMatchObject({ issuer: GH_ISSUER });
  });

  it('a pattern that only matches unanchored is refused (plain @sigstore/verify accepts it)', async () => {
    const evil = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken({ repository: 'evil-acme/app-x' })));
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = codeOf(v, evil, { policy: { issuer: GH_ISSUER, subjectRegExp: 'https://github.com/acme/app/.*' }, digest: artifactDigest });
    expect(r.code).toBe('IDENTITY_MISMATCH');
    const unanchoredOnly = codeOf(v, evil, { policy: { issuer: GH_ISSUER, subjectRegExp: 'acme/app' }, digest: artifactDigest });
    expect(unanchoredOnly.code).toBe('IDENTITY_MISMATCH');
    expect(unanchoredOnly.details.actual).toMatchObject({ subject: 'https://github.com/evil-acme/app-x/.github/workflows/release.yml@refs/heads/main' });
    // What sigstore-js does with the same pattern:
    const plain = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(m.trustedRoot)));
    expect(() => plain.verify(toSignedEntity(bundleFromJSON(evil)), { subjectAlternativeName: 'acme/app', extensions: { issuer: GH_ISSUER } })).not.toThrow();
    // An anchored pattern that names the whole identity passes.
    expect(codeOf(v, dsse, { policy: { issuer: GH_ISSUER, subjectRegExp: 'https://github\\.com/acme/app/\\.github/workflows/[a-z]+\\.yml@refs/heads/main' }, digest: artifactDigest }).code).toBe('OK');
  });

  it('a re-created repository with the same name (new repository id) → IDENTITY_MISMATCH when the id is pinned', async () => {
    const recreated = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken({ repositoryId: '999999999' })));
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const pinned = { ...policy, claims: { repositoryId: '100200300', ownerId: '4004004' } };
    expect(codeOf(v, dsse, { policy: pinned, digest: artifactDigest }).code).toBe('OK');
    const r = codeOf(v, recreated, { policy: pinned, digest: artifactDigest });
    expect(r.code).toBe('IDENTITY_MISMATCH');
    expect((r.details.actual as { claims: Record<string, string> }).claims.sourceRepositoryIdentifier).toBe('999999999');
  });

  it('a foreign root → UNTRUSTED_ROOT', () => {
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(foreign) });
    const r = codeOf(v, dsse, { policy, digest: artifactDigest });
    expect(r.code).toBe('UNTRUSTED_ROOT');
    expect(r.details.actualIdentity).toEqual({ subject: GH_SAN, issuer: GH_ISSUER });
    expect(r.details.expectedIdentity).toEqual(policy);
    expect(codeOf(v, message, { policy, artifact }).code).toBe('UNTRUSTED_ROOT');
  });

  it('a tampered artifact → INVALID_SIGNATURE (message signature and DSSE payload)', () => {
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const tampered = Buffer.from(artifact.toString().replace('image', 'imagf'));
    expect(codeOf(v, message, { policy, artifact: tampered }).code).toBe('INVALID_SIGNATURE');
    // Same bytes, and a signature field flipped: the signature over the recorded digest fails.
    const badSig = structuredClone(message);
    const sig = Buffer.from(badSig.messageSignature!.signature, 'base64');
    sig[sig.length - 1] ^= 1;
    badSig.messageSignature!.signature = sig.toString('base64');
    expect(codeOf(v, badSig, { policy, artifact }).code).toBe('INVALID_SIGNATURE');
    const payload = JSON.parse(Buffer.from(dsse.dsseEnvelope!.payload, 'base64').toString());
    payload.predicate = { buildDefinition: { buildType: 'evil' } };
    const forged = structuredClone(dsse);
    forged.dsseEnvelope!.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    expect(codeOf(v, forged, { policy, digest: artifactDigest }).code).toBe('INVALID_SIGNATURE');
  });

  it('an in-toto subject that differs from the artifact → SUBJECT_MISMATCH (plain @sigstore/verify accepts it)', () => {
    const other = sha256Digest('another image');
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = codeOf(v, dsse, { policy, digest: other });
    expect(r.code).toBe('SUBJECT_MISMATCH');
    expect(r.details.expected).toBe(other);
    expect(r.details.actualIdentity).toEqual({ subject: GH_SAN, issuer: GH_ISSUER });
    expect(() => plainVerify(m.trustedRoot, dsse)).not.toThrow();
  });

});

describe('the two gaps of @sigstore/verify 3.1 (SPEC §9)', () => {
  it('a trusted root whose tlog has no validity start is rejected (plain @sigstore/verify accepts it)', () => {
    const root = structuredClone(m.trustedRoot) as { tlogs: { publicKey: { validFor?: unknown } }[] };
    delete root.tlogs[0].publicKey.validFor;
    expect(() => plainVerify(root, dsse)).not.toThrow();
    let code = '';
    try { trustedRootFromJSON(root, 'root-without-start.json'); } catch (e) { code = (e as CtError).code; }
    expect(code).toBe('UNTRUSTED_ROOT');
  });

  it('a Rekor v2 DSSE entry logging the hash of the PAE is accepted (plain @sigstore/verify rejects it)', () => {
    const log = { ...m.tlogKeys, origin: m.tlogOrigin };
    const v2 = structuredClone(dsse);
    v2.verificationMaterial.tlogEntries = [rekorV2DsseEntry(dsse, log, 'pae') as never];
    let plainCode = '';
    try { plainVerify(m.trustedRoot, v2); } catch (e) { plainCode = (e as { code: string }).code; }
    expect(plainCode).toBe('TLOG_BODY_ERROR');
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = v.verify(JSON.stringify(v2), { policy, digest: artifactDigest });
    expect(r.logEntries).toHaveLength(1);
    expect(r.logEntries[0].operator).toBe('ct-test-rekor');
    // The payload-hash form verifies as well; a hash of anything else is refused.
    const asPayload = structuredClone(dsse);
    asPayload.verificationMaterial.tlogEntries = [rekorV2DsseEntry(dsse, log, 'payload') as never];
    expect(codeOf(v, asPayload, { policy, digest: artifactDigest }).code).toBe('OK');
    const wrong = structuredClone(dsse);
    wrong.verificationMaterial.tlogEntries = [rekorV2DsseEntry(dsse, log, 'other') as never];
    expect(codeOf(v, wrong, { policy, digest: artifactDigest }).code).toBe('LOG_PROOF_INVALID');
    // A v2 entry signed by a key the root does not list fails its checkpoint.
    const stranger = structuredClone(dsse);
    stranger.verificationMaterial.tlogEntries = [rekorV2DsseEntry(dsse, { ...foreign.tlogKeys, origin: m.tlogOrigin }, 'pae') as never];
    expect(codeOf(v, stranger, { policy, digest: artifactDigest }).code).toBe('LOG_PROOF_INVALID');
  });
});

describe('signing against Rekor v2 (mock v2 endpoint with proofs that verify)', () => {
  it('DSSE and message bundles from Rekor v2 verify with a TSA timestamp; plain @sigstore/verify rejects the DSSE one', async () => {
    const o = keylessOptions(m, await m.githubToken(), { rekorApiVersion: 2, timeoutMs: 20_000 });
    const v2dsse = await signAttestationForCtp(statementFor(artifactDigest), o);
    // Rekor v2 has no dsse type: the envelope is logged as hashedrekord 0.0.2 (test/sigstore/rekor-v2.test.ts).
    expect(v2dsse.verificationMaterial.tlogEntries[0].kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    expect(v.verify(JSON.stringify(v2dsse), { policy, digest: artifactDigest }).logEntries[0].operator).toBe('ct-test-rekor');
    let plainCode = '';
    try { plainVerify(m.trustedRoot, v2dsse); } catch (e) { plainCode = (e as { code: string }).code; }
    expect(plainCode).toBe('TLOG_BODY_ERROR');
    const v2msg = await signMessage(artifact, { ...o, identityToken: await m.githubToken() });
    expect(v2msg.verificationMaterial.tlogEntries[0].kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
    expect(v.verify(JSON.stringify(v2msg), { policy, artifact }).kind).toBe('message');
    // No integrated time in v2: without the TSA there is no timestamp to verify the certificate at.
    const noTsa = await signAttestationForCtp(statementFor(artifactDigest), { ...o, identityToken: await m.githubToken(), tsaURL: undefined });
    expect(codeOf(v, noTsa, { policy, digest: artifactDigest }).code).toBe('THRESHOLD_NOT_MET');
  });
});

describe('thresholds and cache', () => {
  it('too few tlog entries → INSUFFICIENT_LOG_COVERAGE; too few timestamps or SCTs → THRESHOLD_NOT_MET', () => {
    const root = rootOf(m);
    expect(codeOf(new SigstoreBundleVerifier({ trustedRoot: root, thresholds: { tlog: 2 } }), dsse, { policy, digest: artifactDigest }).code).toBe('INSUFFICIENT_LOG_COVERAGE');
    expect(codeOf(new SigstoreBundleVerifier({ trustedRoot: root, thresholds: { timestamps: 3 } }), dsse, { policy, digest: artifactDigest }).code).toBe('THRESHOLD_NOT_MET');
    expect(codeOf(new SigstoreBundleVerifier({ trustedRoot: root, thresholds: { ctlog: 2 } }), dsse, { policy, digest: artifactDigest }).code).toBe('THRESHOLD_NOT_MET');
    expect(codeOf(new SigstoreBundleVerifier({ trustedRoot: root, thresholds: { tlog: 1, timestamps: 2, ctlog: 1 } }), dsse, { policy, digest: artifactDigest }).code).toBe('OK');
  });

  it('counts only verified timestamps: a proof-only log entry\'s integrated time is neither counted nor reported, on either path', () => {
    // One RFC 3161 token and one entry whose signed entry timestamp was removed: the inclusion
    // proof covers the entry's body, not the time written beside it (here 2100-01-01).
    const j = JSON.parse(JSON.stringify(dsse)) as { verificationMaterial: { tlogEntries: Record<string, unknown>[]; timestampVerificationData?: { rfc3161Timestamps?: unknown[] } } };
    expect(j.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
    const e = j.verificationMaterial.tlogEntries[0];
    expect(e.inclusionProof).toBeDefined();
    delete e.inclusionPromise;
    e.integratedTime = '4102444800';
    for (const fast of [true, false]) {
      const strict = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), thresholds: { timestamps: 2 }, cacheSize: 0 });
      const lax = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), thresholds: { timestamps: 1 }, cacheSize: 0 });
      if (!fast) for (const v of [strict, lax]) (v as unknown as { fast: { verify: () => null } }).fast.verify = () => null;
      const c = codeOf(strict, j, { policy, digest: artifactDigest });
      expect(c.code).toBe('THRESHOLD_NOT_MET');
      expect(c.details).toMatchObject({ threshold: 'timestamps', expected: 2, actual: 1 });
      const r = lax.verify(JSON.stringify(j), { policy, digest: artifactDigest });
      expect(r.logEntries[0].integratedTime).toBe(0);
    }
  });

  it('caches per bundle, digest, trust and policy: a changed key part is verified afresh', () => {
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const text = JSON.stringify(dsse);
    const a = v.verify(text, { policy, digest: artifactDigest });
    expect(v.verify(text, { policy, digest: artifactDigest })).toBe(a);
    expect(codeOf(v, dsse, { policy: { ...policy, subject: `${GH_SAN}x` }, digest: artifactDigest }).code).toBe('IDENTITY_MISMATCH');
    expect(codeOf(v, dsse, { policy, digest: sha256Digest('x') }).code).toBe('SUBJECT_MISMATCH');
    // A failure is cached too, and stays a failure.
    expect(codeOf(v, dsse, { policy, digest: sha256Digest('x') }).code).toBe('SUBJECT_MISMATCH');
  });

  it('malformed input → MALFORMED_BUNDLE', () => {
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    expect(codeOf(v, { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }, { policy, digest: artifactDigest }).code).toBe('MALFORMED_BUNDLE');
    let code = '';
    try { v.verify('{not json', { policy, digest: artifactDigest }); } catch (e) { code = (e as CtError).code; }
    expect(code).toBe('MALFORMED_BUNDLE');
  });
});
