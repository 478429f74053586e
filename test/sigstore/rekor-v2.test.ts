/**
 * Issue 10 item 6: Rekor v2 as deployed. A DSSE envelope is logged as hashedrekord 0.0.2 whose digest
 * is the hash of its PAE (SHA-256 for P-256 signers, SHA-384 for P-384), one signature per envelope.
 * For each signer (keyless P-256 certificate, P-256 key, P-384 key) and each log (Rekor v1 dsse
 * 0.0.1, Rekor v2 hashedrekord 0.0.2): sign, then verify; and an entry with another digest, another
 * signature or another key is refused (LOG_PROOF_INVALID, naming what differs). The entries come from
 * the mock's own endpoints (v2: shaped as Rekor v2 logs them, with checkpoints that verify) or are
 * rebuilt with one field changed and a valid checkpoint, so only the body comparison can catch them.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { rekorV2DsseEntry, rekorV2HashedRekordEntry } from '../support/sigstore-rekor2.js';
import { runCt } from '../support/cli.js';
import { KeySigner, signAttestationForCtp, type SerializedBundle, type SigstoreSignOptions } from '../../src/sign/index.js';
import { SigstoreBundleVerifier } from '../../src/verify/sigstore/index.js';
import { CtError } from '../../src/core/errors.js';
import { pae } from '../../src/attest/dsse.js';
import { GH_ISSUER, GH_SAN, artifactDigest, keylessOptions, rootOf, statementFor } from './fixtures.js';

let m: SigstoreMock;
const policy = { issuer: GH_ISSUER, subject: GH_SAN };
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });

interface Signer { name: string; hash: 'sha256' | 'sha384'; publicKey?: KeyObject; options(api: 1 | 2): Promise<SigstoreSignOptions> }
const signers: Signer[] = [
  { name: 'keyless (Fulcio P-256 certificate)', hash: 'sha256', options: async (api) => keylessOptions(m, await m.githubToken(), { rekorApiVersion: api }) },
  { name: 'P-256 key', hash: 'sha256', publicKey: p256.publicKey, options: async (api) => ({ key: new KeySigner(p256.privateKey), rekorURL: m.rekorURL, tsaURL: m.tsaURL, rekorApiVersion: api, timeoutMs: 20_000, retries: 1 }) },
  { name: 'P-384 key', hash: 'sha384', publicKey: p384.publicKey, options: async (api) => ({ key: new KeySigner(p384.privateKey), rekorURL: m.rekorURL, tsaURL: m.tsaURL, rekorApiVersion: api, timeoutMs: 20_000, retries: 1 }) },
];

const verifierFor = (s: Signer) => new SigstoreBundleVerifier({ trustedRoot: rootOf(m), publicKey: s.publicKey, cacheSize: 0 });
const requestFor = (s: Signer) => ({ policy: s.publicKey ? undefined : policy, digest: artifactDigest });

function outcome(s: Signer, bundle: unknown): { code: string; field?: unknown; message?: string } {
  try {
    verifierFor(s).verify(JSON.stringify(bundle), requestFor(s));
    return { code: 'OK' };
  } catch (e) {
    if (e instanceof CtError) return { code: e.code, field: e.details.field, message: e.message };
    throw e;
  }
}

const bodyOf = (b: SerializedBundle) => JSON.parse(Buffer.from(b.verificationMaterial.tlogEntries[0].canonicalizedBody, 'base64').toString('utf8'));
const withEntry = (b: SerializedBundle, entry: unknown): SerializedBundle => {
  const c = structuredClone(b);
  c.verificationMaterial.tlogEntries = [entry as never];
  return c;
};

beforeAll(async () => {
  m = await startSigstoreMock();
});
afterAll(async () => {
  await m.close();
});

describe.each(signers)('$name', (s) => {
  let v1: SerializedBundle;
  let v2: SerializedBundle;
  let other: { v1: SerializedBundle; v2: SerializedBundle };

  beforeAll(async () => {
    [v1, v2] = [await signAttestationForCtp(statementFor(artifactDigest), await s.options(1)), await signAttestationForCtp(statementFor(artifactDigest), await s.options(2))];
    // The same statement signed again (ECDSA: another signature; keyless: another key too).
    other = { v1: await signAttestationForCtp(statementFor(artifactDigest), await s.options(1)), v2: await signAttestationForCtp(statementFor(artifactDigest), await s.options(2)) };
  }, 60_000);

  it('Rekor v1: logged as dsse 0.0.1; sign then verify', () => {
    expect(v1.verificationMaterial.tlogEntries[0].kindVersion).toEqual({ kind: 'dsse', version: '0.0.1' });
    expect(outcome(s, v1)).toEqual({ code: 'OK' });
  });

  it(`Rekor v2: logged as hashedrekord 0.0.2 over ${s.hash} of the PAE with the signer's ${s.publicKey ? 'key' : 'certificate'}; sign then verify`, () => {
    expect(v2.verificationMaterial.tlogEntries[0].kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
    const env = v2.dsseEnvelope!;
    expect(env.signatures).toHaveLength(1);
    const h = bodyOf(v2).spec.hashedRekordV002;
    const expected = createHash(s.hash).update(pae(env.payloadType, Buffer.from(env.payload, 'base64'))).digest('base64');
    expect(h.data).toEqual({ algorithm: s.hash === 'sha384' ? 'SHA2_384' : 'SHA2_256', digest: expected });
    expect(h.signature.content).toBe(env.signatures[0].sig);
    expect(h.signature.verifier.keyDetails).toBe(s.hash === 'sha384' ? 'PKIX_ECDSA_P384_SHA_384' : 'PKIX_ECDSA_P256_SHA_256');
    if (s.publicKey) expect(h.signature.verifier.publicKey.rawBytes).toBe(spki(s.publicKey).toString('base64'));
    else expect(h.signature.verifier.x509Certificate.rawBytes).toBe(v2.verificationMaterial.certificate!.rawBytes);
    expect(outcome(s, v2)).toEqual({ code: 'OK' });
  });

  it('Rekor v2: an entry with another digest, another signature or another key is refused, naming what differs', () => {
    const log = { ...m.tlogKeys, origin: m.tlogOrigin };
    const signer = { hash: s.hash, publicKeyDer: s.publicKey ? spki(s.publicKey) : undefined };
    // The untouched rebuild verifies: what follows fails for its one change only.
    expect(outcome(s, withEntry(v2, rekorV2HashedRekordEntry(v2, log, signer)))).toEqual({ code: 'OK' });
    const env = v2.dsseEnvelope!;
    const payloadHash = createHash(s.hash).update(Buffer.from(env.payload, 'base64')).digest();
    const otherSig = Buffer.from(other.v2.dsseEnvelope!.signatures[0].sig, 'base64');
    const stranger = generateKeyPairSync('ec', { namedCurve: s.hash === 'sha384' ? 'P-384' : 'P-256' }).publicKey;
    const keyDetails = s.hash === 'sha384' ? 'PKIX_ECDSA_P384_SHA_384' : 'PKIX_ECDSA_P256_SHA_256';
    const cases: [string, Parameters<typeof rekorV2HashedRekordEntry>[3], string][] = [
      ['the hash of the payload instead of the PAE', { digest: payloadHash }, 'digest'],
      ['one byte of the PAE digest changed', { digest: Buffer.from(bodyOf(v2).spec.hashedRekordV002.data.digest, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b)) as Buffer }, 'digest'],
      ['another signature over the same envelope', { signature: otherSig }, 'signature'],
      ['another key', { verifier: { publicKey: { rawBytes: spki(stranger).toString('base64') }, keyDetails } }, 'key'],
      ['another certificate', { verifier: { x509Certificate: { rawBytes: other.v2.verificationMaterial.certificate?.rawBytes ?? v2.verificationMaterial.certificate?.rawBytes ?? '' }, keyDetails } }, 'key'],
      ['other key details', { verifier: { ...(s.publicKey ? { publicKey: { rawBytes: spki(s.publicKey).toString('base64') } } : { x509Certificate: { rawBytes: v2.verificationMaterial.certificate!.rawBytes } }), keyDetails: s.hash === 'sha384' ? 'PKIX_ECDSA_P256_SHA_256' : 'PKIX_ECDSA_P384_SHA_384' } }, 'key'],
    ];
    for (const [what, mutation, field] of cases) {
      const r = outcome(s, withEntry(v2, rekorV2HashedRekordEntry(v2, log, signer, mutation)));
      expect({ what, code: r.code, field: r.field }).toEqual({ what, code: 'LOG_PROOF_INVALID', field });
      expect(r.message).toMatch(/^transparency log entry does not match the bundle: Rekor v2 entry 0 /);
    }
    // Authentic entries of another signing of the same statement: proofs verify, bodies differ.
    expect(outcome(s, withEntry(v2, other.v2.verificationMaterial.tlogEntries[0]))).toMatchObject({ code: 'LOG_PROOF_INVALID', field: 'signature' });
  });

  it('Rekor v1: an authentic dsse 0.0.1 entry of another signing is refused', () => {
    expect(outcome(s, withEntry(v1, other.v1.verificationMaterial.tlogEntries[0]))).toMatchObject({ code: 'LOG_PROOF_INVALID' });
  });
});

describe('dsse 0.0.2 entries (still accepted)', () => {
  it('verify with the bundle\'s certificate as their signer and are refused when they name another', async () => {
    const keyless = signers[0];
    const b = await signAttestationForCtp(statementFor(artifactDigest), await keyless.options(1));
    const b2 = await signAttestationForCtp(statementFor(artifactDigest), await keyless.options(1));
    const log = { ...m.tlogKeys, origin: m.tlogOrigin };
    expect(outcome(keyless, withEntry(b, rekorV2DsseEntry(b, log, 'pae')))).toEqual({ code: 'OK' });
    const otherCert = structuredClone(b);
    otherCert.verificationMaterial.certificate = b2.verificationMaterial.certificate;
    expect(outcome(keyless, withEntry(b, rekorV2DsseEntry(otherCert, log, 'pae')))).toMatchObject({ code: 'LOG_PROOF_INVALID', field: 'key' });
  }, 30_000);
});

describe('keys Rekor v2 cannot log', () => {
  it('an Ed25519 key is refused before anything is sent (KEY_INVALID): its signature covers the PAE, not a digest', async () => {
    const before = m.hits['POST /rekor/api/v2/log/entries'] ?? 0;
    const err = await signAttestationForCtp(statementFor(artifactDigest), { key: new KeySigner(generateKeyPairSync('ed25519').privateKey), rekorURL: m.rekorURL, rekorApiVersion: 2 })
      .then(() => undefined, (e: unknown) => e as CtError);
    expect(err?.code).toBe('KEY_INVALID');
    expect(err?.message).toBe('Rekor v2 logs a signature by the digest it signs: an ECDSA P-256 or P-384 key is needed (got ed25519)');
    expect(m.hits['POST /rekor/api/v2/log/entries'] ?? 0).toBe(before);
  });
});

describe('ct verify-bundle (sigstore-conformance protocol) with Rekor v2 DSSE bundles', () => {
  let dir: string;
  let bundle: SerializedBundle;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-rekor2-cli-'));
    await writeFile(join(dir, 'root.json'), JSON.stringify(m.trustedRoot));
    bundle = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken(), { rekorApiVersion: 2 }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const verifyBundle = async (b: unknown, name: string) => {
    await writeFile(join(dir, name), JSON.stringify(b));
    return runCt(['verify-bundle', '--bundle', join(dir, name), '--certificate-identity', GH_SAN, '--certificate-oidc-issuer', GH_ISSUER, '--trusted-root', join(dir, 'root.json'), artifactDigest], { env: { CT_SIGSTORE_CACHE: join(dir, 'cache') } });
  };

  it('accepts it, and refuses it when one byte of the logged PAE digest, the signature or the certificate changes', async () => {
    const ok = await verifyBundle(bundle, 'ok.json');
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });

    const digestByte = structuredClone(bundle);
    const body = bodyOf(bundle);
    const d = Buffer.from(body.spec.hashedRekordV002.data.digest, 'base64');
    d[5] ^= 0x01;
    body.spec.hashedRekordV002.data.digest = d.toString('base64');
    digestByte.verificationMaterial.tlogEntries[0].canonicalizedBody = Buffer.from(JSON.stringify(body)).toString('base64');
    const sigByte = structuredClone(bundle);
    const sig = Buffer.from(sigByte.dsseEnvelope!.signatures[0].sig, 'base64');
    sig[sig.length - 3] ^= 0x01;
    sigByte.dsseEnvelope!.signatures[0].sig = sig.toString('base64');
    const certByte = structuredClone(bundle);
    const cert = Buffer.from(certByte.verificationMaterial.certificate!.rawBytes, 'base64');
    cert[cert.length - 10] ^= 0x01; // inside the CA's signature: the DER still parses
    certByte.verificationMaterial.certificate!.rawBytes = cert.toString('base64');

    // A logged body nested 100,000 deep: refused by the depth limit before the recursive comparison.
    const deepBody = structuredClone(bundle);
    deepBody.verificationMaterial.tlogEntries[0].canonicalizedBody = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`).toString('base64');

    for (const [name, b, code] of [['digest', digestByte, 'LOG_PROOF_INVALID'], ['signature', sigByte, 'INVALID_SIGNATURE'], ['certificate', certByte, 'UNTRUSTED_ROOT'], ['deep body', deepBody, 'LOG_PROOF_INVALID']] as const) {
      const r = await verifyBundle(b, `${name}.json`);
      expect({ name, failed: r.code !== 0, code: /error\[([A-Z_]+)\]/.exec(r.stderr)?.[1] }).toEqual({ name, failed: true, code });
    }
  }, 60_000);

  it('ct sign-bundle --in-toto against a Rekor v2 log logs the DSSE envelope as hashedrekord 0.0.2', async () => {
    await writeFile(join(dir, 'statement.json'), JSON.stringify(statementFor(artifactDigest)));
    const out = join(dir, 'signed.json');
    const s = await runCt(['sign-bundle', '--in-toto', '--identity-token', await m.githubToken(), '--bundle', out,
      '--fulcio-url', m.fulcioURL, '--rekor-url', m.rekorURL, '--tsa-url', m.tsaURL, '--rekor-api-version', '2', join(dir, 'statement.json')],
    { env: { CT_SIGSTORE_CACHE: join(dir, 'cache') } });
    expect({ code: s.code, stderr: s.stderr }).toEqual({ code: 0, stderr: `wrote ${out} (application/vnd.dev.sigstore.bundle.v0.3+json)\n` });
    const signed = JSON.parse(await (await import('node:fs/promises')).readFile(out, 'utf8')) as SerializedBundle;
    expect(signed.verificationMaterial.tlogEntries[0].kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
    const r = await verifyBundle(signed, 'signed-copy.json');
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  }, 60_000);
});
