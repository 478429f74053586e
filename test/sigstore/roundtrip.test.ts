import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, signDsse, signMessage, KeySigner } from '../../src/sign/index.js';
import { SigstoreBundleVerifier } from '../../src/verify/sigstore/index.js';
import { isCtError } from '../../src/core/errors.js';
import { sha256Digest } from '../../src/core/digest.js';
import { GH_ISSUER, GH_SAN, artifact, artifactDigest, ecKey, edKey, keylessOptions, rootOf, statementFor } from './fixtures.js';

let m: SigstoreMock;
beforeAll(async () => { m = await startSigstoreMock(); });
afterAll(async () => { await m.close(); });

const policy = { issuer: GH_ISSUER, subject: GH_SAN };

describe('keyless round trips (mock Fulcio/Rekor/TSA on 127.0.0.1)', () => {
  it('DSSE in-toto attestation: v0.3, verified with decoded GitHub claims and the tlog operator', async () => {
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.verificationMaterial.certificate).toBeDefined();
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), thresholds: { tlog: 1, ctlog: 1, timestamps: 2 } });
    const r = v.verify(JSON.stringify(bundle), { policy, digest: artifactDigest });
    expect(r.kind).toBe('dsse');
    expect(r.signer).toMatchObject({ kind: 'keyless', issuer: GH_ISSUER, subject: GH_SAN });
    expect(r.signer.claims).toMatchObject({
      sourceRepositoryUri: 'https://github.com/acme/app',
      sourceRepositoryIdentifier: '100200300',
      sourceRepositoryOwnerIdentifier: '4004004',
      sourceRepositoryRef: 'refs/heads/main',
      buildTrigger: 'push',
      runnerEnvironment: 'github-hosted',
      githubWorkflowRepository: 'acme/app',
    });
    expect(r.attestation?.source).toBe('sigstore');
    expect(r.attestation?.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(r.logEntries).toHaveLength(1);
    expect(r.logEntries[0]).toMatchObject({ kind: 'rekor', operator: 'ct-test-rekor' });
    expect(r.attestation?.logOperators).toEqual(['ct-test-rekor']);
  });

  it('message signature over the artifact bytes (hashedrekord), emitted as v0.3', async () => {
    const bundle = await signMessage(artifact, keylessOptions(m, await m.githubToken()));
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = v.verify(JSON.stringify(bundle), { policy, artifact });
    expect(r.kind).toBe('message');
    expect(r.signer.subject).toBe(GH_SAN);
    // FILE_OR_DIGEST as a digest: the signature is checked over the recorded SHA-256.
    expect(v.verify(JSON.stringify(bundle), { policy, digest: artifactDigest }).digest).toBe(artifactDigest);
    let code = '';
    try { v.verify(JSON.stringify(bundle), { policy, digest: sha256Digest('other') }); } catch (e) { code = (e as { code: string }).code; }
    expect(code).toBe('INVALID_SIGNATURE');
  });

  it('GitLab CI token: SAN is the CI config ref URI, project and namespace ids pinned', async () => {
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.gitlabToken()));
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const san = 'https://gitlab.com/acme-group/app//.gitlab-ci.yml@refs/heads/main';
    const r = v.verify(JSON.stringify(bundle), {
      policy: { issuer: 'https://gitlab.com', subject: san, claims: { repositoryId: '20020', ownerId: '7007', ref: 'refs/heads/main' } },
      digest: artifactDigest,
    });
    expect(r.signer).toMatchObject({ issuer: 'https://gitlab.com', subject: san });
    expect(r.signer.claims?.sourceRepositoryUri).toBe('https://gitlab.com/acme-group/app');
  });

  it('reusable workflow: the certificate names the called workflow, not the caller', async () => {
    const token = await m.githubToken({ jobWorkflowRepository: 'acme/shared', jobWorkflowPath: '.github/workflows/build.yml' });
    const bundle = await signDsse(Buffer.from(JSON.stringify(statementFor(artifactDigest))), keylessOptions(m, token));
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    const r = v.verify(JSON.stringify(bundle), { policy: { issuer: GH_ISSUER, subject: 'https://github.com/acme/shared/.github/workflows/build.yml@refs/heads/main' }, digest: artifactDigest });
    expect(r.signer.claims?.buildConfigUri).toBe(GH_SAN);
    expect(r.signer.claims?.sourceRepositoryUri).toBe('https://github.com/acme/app');
  });

  it('Rekor intoto entries verify too (the other way around the DSSE storage trap)', async () => {
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken(), { rekorEntryType: 'intoto' }));
    expect(bundle.verificationMaterial.tlogEntries[0].kindVersion?.kind).toBe('intoto');
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    expect(v.verify(JSON.stringify(bundle), { policy, digest: artifactDigest }).signer.subject).toBe(GH_SAN);
  });
});

describe('signing config', () => {
  it('picks the currently valid services of a SigningConfig v0.2', async () => {
    const start = '2020-01-01T00:00:00Z';
    const config = {
      mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
      caUrls: [
        { url: 'http://127.0.0.1:9/expired-fulcio', majorApiVersion: 1, validFor: { start, end: '2021-01-01T00:00:00Z' }, operator: 'old' },
        { url: m.fulcioURL, majorApiVersion: 1, validFor: { start }, operator: 'ct-test' },
      ],
      rekorTlogUrls: [{ url: m.rekorURL, majorApiVersion: 1, validFor: { start }, operator: 'ct-test' }],
      tsaUrls: [{ url: m.tsaURL, majorApiVersion: 1, validFor: { start }, operator: 'ct-test' }],
      rekorTlogConfig: { selector: 'ANY' },
      tsaConfig: { selector: 'ANY' },
    };
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), { identityToken: await m.githubToken(), signingConfig: config, timeoutMs: 5000 });
    expect(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), thresholds: { timestamps: 2 } });
    expect(v.verify(JSON.stringify(bundle), { policy, digest: artifactDigest }).signer.subject).toBe(GH_SAN);
    await expect(signAttestationForCtp(statementFor(artifactDigest), { identityToken: 'x.y.z', signingConfig: { mediaType: 'nope' } })).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('key round trips', () => {
  it.each([['ECDSA P-256', ecKey], ['Ed25519', edKey]])('DSSE with a %s key, logged in Rekor', async (_n, gen) => {
    const { privateKey, publicKey } = gen();
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), { key: new KeySigner(privateKey), rekorURL: m.rekorURL, timeoutMs: 5000 });
    expect(bundle.verificationMaterial.publicKey?.hint).toMatch(/^sha256:[0-9a-f]{64}$/);
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), publicKey });
    const r = v.verify(JSON.stringify(bundle), { digest: artifactDigest });
    expect(r.signer).toMatchObject({ kind: 'key', keyId: bundle.verificationMaterial.publicKey?.hint });
    const other = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), publicKey: gen().publicKey });
    expect(() => other.verify(JSON.stringify(bundle), { digest: artifactDigest })).toThrow(expect.objectContaining({ code: 'INVALID_SIGNATURE' }));
  });

  it('message signature with an ECDSA key; Ed25519 refused for message signatures', async () => {
    const { privateKey, publicKey } = ecKey();
    const bundle = await signMessage(artifact, { key: new KeySigner(privateKey), rekorURL: m.rekorURL });
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), publicKey });
    expect(v.verify(JSON.stringify(bundle), { artifact }).kind).toBe('message');
    await expect(signMessage(artifact, { key: new KeySigner(edKey().privateKey), rekorURL: m.rekorURL })).rejects.toMatchObject({ code: 'KEY_INVALID' });
  });

  it('a key bundle without --key is UNKNOWN_KEY', async () => {
    const { privateKey } = ecKey();
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), { key: new KeySigner(privateKey), rekorURL: m.rekorURL });
    const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m) });
    let err: unknown;
    try { v.verify(JSON.stringify(bundle), { digest: artifactDigest }); } catch (e) { err = e; }
    expect(isCtError(err, 'UNKNOWN_KEY')).toBe(true);
  });
});

describe('plain @sigstore/verify agrees on the valid bundles', () => {
  it('verifies what we sign', async () => {
    const bundle = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
    const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(m.trustedRoot)));
    const signer = verifier.verify(toSignedEntity(bundleFromJSON(bundle)));
    expect(signer.identity?.subjectAlternativeName).toBe(GH_SAN);
  });
});
