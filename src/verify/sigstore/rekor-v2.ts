/**
 * Gap 1 of @sigstore/verify 3.1 (SPEC §9): Rekor v2 logs a DSSE envelope as `hashedrekord` 0.0.2
 * whose digest is the hash of the PAE (SHA-256 for P-256 keys, SHA-384 for P-384), while the
 * verifier compares it with SHA-256 of the payload, so valid v2 entries are rejected; and for a
 * v2 hashedrekord it compares only digest and signature, never the key the log recorded.
 *
 * As sigstore-go does, every v2 hashedrekord entry is checked against the entry rebuilt from the
 * bundle (certificate or key, key details, digest, signature): the logged body is never trusted on
 * its own. Only then is @sigstore/verify's digest comparison widened to the PAE digest, and its DSSE
 * signature check given the hash that goes with a P-384 key. The older `dsse` 0.0.1 (Rekor v1) path
 * is untouched; `dsse` 0.0.2 bodies (SHA-256 of the PAE) keep being accepted, when they name the
 * bundle's signer.
 */
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../core/json.js';
import { createHash, timingSafeEqual, verify, X509Certificate, type KeyObject } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { SignedEntity } from '@sigstore/verify';
import { Entry } from '@sigstore/protobuf-specs/rekor/v2';
import { canonicalize } from '../../core/jcs.js';
import { pae } from '../../attest/dsse.js';
import { hashedRekordV002Body, keyProfile, paeDigest, type KeyProfile, type V2Verifier } from './rekor-v2-entry.js';

type SignatureContent = SignedEntity['signature'];

/**
 * The entity with some of its signature checks replaced (the rest delegate to the original):
 * how this verifier covers the gaps of @sigstore/verify without forking it.
 */
export function withSignature(entity: SignedEntity, over: Partial<Pick<SignatureContent, 'compareDigest' | 'verifySignature'>>): SignedEntity {
  const inner = entity.signature;
  return {
    ...entity,
    signature: {
      get signature() { return inner.signature; },
      compareSignature: (s: Buffer) => inner.compareSignature(s),
      compareDigest: over.compareDigest ?? ((d: Buffer) => inner.compareDigest(d)),
      verifySignature: over.verifySignature ?? ((k) => inner.verifySignature(k)),
    },
  };
}

export function isRekorV2Dsse(e: { kindVersion?: { kind: string; version: string } }): boolean {
  return e.kindVersion?.kind === 'dsse' && e.kindVersion.version === '0.0.2';
}

export function isRekorV2HashedRekord(e: { kindVersion?: { kind: string; version: string } }): boolean {
  return e.kindVersion?.kind === 'hashedrekord' && e.kindVersion.version === '0.0.2';
}

/** An error shaped as @sigstore/verify's, so the verifier maps it like its own body mismatches. */
function bodyError(message: string, field: string): Error {
  return Object.assign(new Error(message), { code: 'TLOG_BODY_ERROR', field });
}

/** The signer's key and how a v2 entry names it: the bundle's certificate, or the given key. */
function signerOf(bundle: Bundle, publicKey: KeyObject | undefined): { key: KeyObject; verifier: V2Verifier } | undefined {
  const vm = bundle.verificationMaterial.content;
  const der = vm.$case === 'certificate' ? vm.certificate.rawBytes : vm.$case === 'x509CertificateChain' ? vm.x509CertificateChain.certificates[0]?.rawBytes : undefined;
  if (der) {
    try {
      return { key: new X509Certificate(der).publicKey, verifier: { kind: 'certificate', der } };
    } catch {
      return undefined; // reported by @sigstore/verify as a certificate error
    }
  }
  if (vm.$case === 'publicKey' && publicKey) return { key: publicKey, verifier: { kind: 'publicKey', der: publicKey.export({ type: 'spki', format: 'der' }) } };
  return undefined;
}

/** protobuf JSON → the same JSON, normalised (field order, base64, defaults), then JCS. */
function normalised(body: unknown): string | undefined {
  try {
    return canonicalize(Entry.toJSON(Entry.fromJSON(body)));
  } catch {
    return undefined;
  }
}

/** Names the first part of a logged hashedrekord 0.0.2 body that differs from the expected one. */
function differingField(actual: unknown, expected: ReturnType<typeof hashedRekordV002Body>): string {
  const pick = (b: unknown) => {
    const h = (b as { spec?: { hashedRekordV002?: { data?: unknown; signature?: { content?: unknown; verifier?: unknown } } } })?.spec?.hashedRekordV002;
    return { digest: canonicalize(h?.data ?? null), signature: canonicalize(h?.signature?.content ?? null), key: canonicalize(h?.signature?.verifier ?? null) };
  };
  const a = pick(Entry.toJSON(Entry.fromJSON(actual)));
  const e = pick(expected);
  return a.digest !== e.digest ? 'digest' : a.signature !== e.signature ? 'signature' : a.key !== e.key ? 'key' : 'body';
}

/**
 * Stage before @sigstore/verify: each Rekor v2 hashedrekord entry must be the entry Rekor v2 logs
 * for this bundle. Throws a TLOG_BODY_ERROR naming what differs (digest, signature or key).
 */
export function checkRekorV2Entries(bundle: Bundle, publicKey?: KeyObject): void {
  const entries = bundle.verificationMaterial.tlogEntries.filter(isRekorV2HashedRekord);
  checkRekorV2DsseSigners(bundle, publicKey);
  if (entries.length === 0) return;
  const signer = signerOf(bundle, publicKey);
  if (!signer) return; // no key to rebuild with: @sigstore/verify refuses the bundle itself
  const profile = keyProfile(signer.key);
  if (!profile) throw bodyError(`a Rekor v2 hashedrekord entry needs an ECDSA P-256 or P-384 signer; this one is ${signer.key.asymmetricKeyType} ${signer.key.asymmetricKeyDetails?.namedCurve ?? ''}`.trim(), 'key');
  let digest: Buffer;
  let signature: Buffer;
  if (bundle.content.$case === 'dsseEnvelope') {
    const env = bundle.content.dsseEnvelope;
    if (env.signatures.length !== 1) throw bodyError(`Rekor v2 logs one signature per DSSE envelope; this envelope has ${env.signatures.length}`, 'signature');
    digest = paeDigest(env.payloadType, env.payload, profile);
    signature = env.signatures[0].sig;
  } else {
    digest = bundle.content.messageSignature.messageDigest?.digest ?? Buffer.alloc(0);
    signature = bundle.content.messageSignature.signature;
  }
  const expectedBody = hashedRekordV002Body(digest, signature, signer.verifier, profile);
  const expected = normalised(expectedBody);
  entries.forEach((entry) => {
    let body: unknown;
    try {
      body = parseLoggedBody(entry.canonicalizedBody);
    } catch {
      throw bodyError(`Rekor v2 entry ${entry.logIndex}: the logged body is not JSON`, 'body');
    }
    if (normalised(body) === expected) return;
    const field = normalised(body) === undefined ? 'body' : differingField(body, expectedBody);
    const what: Record<string, string> = {
      digest: `logs another digest than the bundle's (${profile.algorithmName} of ${bundle.content.$case === 'dsseEnvelope' ? 'the PAE of the envelope' : 'the message'})`,
      signature: "logs another signature than the bundle's",
      key: `names another signer than the bundle's ${signer.verifier.kind === 'certificate' ? 'certificate' : 'key'} (${profile.keyDetailsName})`,
      body: 'is not the hashedrekord 0.0.2 entry rebuilt from the bundle',
    };
    throw bodyError(`Rekor v2 entry ${entry.logIndex} ${what[field]}`, field);
  });
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Rekor v2 DSSE entries (hashedrekord 0.0.2, already checked by checkRekorV2Entries, or dsse 0.0.2)
 * record the hash of the PAE: @sigstore/verify's digest comparison accepts it. A P-384 signer's
 * DSSE signature is checked with SHA-384 (@sigstore/verify hashes every ECDSA signature with SHA-256).
 */
export function acceptRekorV2DsseDigest(entity: SignedEntity, bundle: Bundle): SignedEntity {
  if (bundle.content.$case !== 'dsseEnvelope') return entity;
  const env = bundle.content.dsseEnvelope;
  // The PAE only when a v2 entry or a P-384 key needs it (not for the common Rekor v1 / P-256 bundle).
  let paeBytes: Buffer | undefined;
  const encoded = () => (paeBytes ??= pae(env.payloadType, env.payload));
  const over: Parameters<typeof withSignature>[1] = {};
  if (entity.tlogEntries.some((e) => isRekorV2Dsse(e) || isRekorV2HashedRekord(e))) {
    const digests = ['sha256', 'sha384'].map((h) => createHash(h).update(encoded()).digest());
    over.compareDigest = (d: Buffer) => entity.signature.compareDigest(d) || digests.some((x) => equal(d, x));
  }
  over.verifySignature = (key) => {
    const k = key as unknown as KeyObject;
    const profile: KeyProfile | undefined = k?.asymmetricKeyType === 'ec' ? keyProfile(k) : undefined;
    if (profile?.hash !== 'sha384') return entity.signature.verifySignature(key);
    try {
      return verify('sha384', encoded(), k, entity.signature.signature);
    } catch {
      return false;
    }
  };
  return withSignature(entity, over);
}

/**
 * `dsse` 0.0.2 entries: @sigstore/verify compares their signature and payload hash but not the
 * signer they record; it must be the bundle's certificate or key, with its key details.
 */
function checkRekorV2DsseSigners(bundle: Bundle, publicKey: KeyObject | undefined): void {
  const entries = bundle.verificationMaterial.tlogEntries.filter(isRekorV2Dsse);
  if (entries.length === 0) return;
  const signer = signerOf(bundle, publicKey);
  const profile = signer && keyProfile(signer.key);
  if (!signer || !profile) return; // refused by @sigstore/verify (no key) or by the signature check
  const expected = canonicalize({ [signer.verifier.kind === 'certificate' ? 'x509Certificate' : 'publicKey']: { rawBytes: signer.verifier.der.toString('base64') }, keyDetails: profile.keyDetailsName });
  for (const entry of entries) {
    let recorded: unknown;
    try {
      const json = Entry.toJSON(Entry.fromJSON(parseLoggedBody(entry.canonicalizedBody))) as { spec?: { dsseV002?: { signatures?: { verifier?: unknown }[] } } };
      recorded = json.spec?.dsseV002?.signatures?.map((sg) => sg.verifier);
    } catch {
      throw bodyError(`Rekor v2 entry ${entry.logIndex}: the logged body is not a dsse 0.0.2 entry`, 'body');
    }
    if (!Array.isArray(recorded) || recorded.length !== 1 || canonicalize(recorded[0] ?? null) !== expected) {
      throw bodyError(`Rekor v2 entry ${entry.logIndex} names another signer than the bundle's ${signer.verifier.kind === 'certificate' ? 'certificate' : 'key'} (${profile.keyDetailsName})`, 'key');
    }
  }
}

/** A logged body as JSON, within the depth limit: the comparisons above walk it recursively. */
function parseLoggedBody(bytes: Buffer): unknown {
  if (jsonDepthExceeds(bytes)) throw new Error(`nested deeper than ${MAX_JSON_DEPTH} levels`);
  return JSON.parse(bytes.toString('utf8'));
}
