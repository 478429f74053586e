import { createPublicKey, type KeyObject } from 'node:crypto';
import { PublicKeyDetails } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { encodeLength, isCanonicalDer } from './der.js';

/** The certificate class of @sigstore/verify's own @sigstore/core (it nests a different version). */
type X509Certificate = Extract<SignedEntity['key'], { $case: 'certificate' }>['certificate'];

/**
 * Speed without changing what is checked. @sigstore/verify re-serialises certificates (toDER) for
 * every comparison and signature check, and re-verifies the trusted root's own certificates (the
 * root's self-signature included) for every bundle and every timestamp; that is most of its time.
 * A parsed certificate never changes, so its DER encodings and its verify() result per issuer are
 * memoized: once for the trusted root's CA and TSA certificates, per bundle for the leaf; for
 * canonical DER (nearly every certificate) the encoding is the parsed bytes themselves, not a
 * re-encoding. (The SCT check clones and edits the leaf; the clone is a new object, so it is not
 * affected. Nothing in @sigstore/verify writes into a certificate's toDER() result.)
 */
interface DerNode { toDER(): Buffer; subs: DerNode[]; value: Buffer; tag: { toDER(): number } }

/**
 * The bytes a parsed node was read from, assuming a minimal length header right before its value
 * (core's values are views into the parsed bytes). Only used where canonical() held for the root.
 */
function rawDer(node: DerNode): Buffer {
  const v = node.value;
  const hdr = 1 + encodeLength(v.length).length;
  return Buffer.from(v.buffer, v.byteOffset - hdr, hdr + v.length);
}

/**
 * True when the certificate's bytes are exactly what core's toDER() writes back: the root's header
 * is the minimal one core writes and every element below has a minimal length (der.ts), so each
 * node's toDER() is its own raw bytes.
 */
function canonical(root: DerNode): boolean {
  const v = root.value;
  const header = Buffer.concat([Buffer.from([root.tag.toDER()]), encodeLength(v.length)]);
  if (v.byteOffset < header.length) return false;
  const raw = rawDer(root);
  return raw.subarray(0, header.length).equals(header) && isCanonicalDer(raw);
}

function memoizeDer(node: DerNode, raw: boolean): void {
  const original = node.toDER;
  let der: Buffer | undefined;
  node.toDER = function toDER(this: DerNode) {
    der ??= raw ? rawDer(this) : original.call(this);
    return der;
  };
  for (const sub of node.subs) memoizeDer(sub, raw);
}

export function memoizeCertificate(cert: X509Certificate): void {
  const root = cert.root as unknown as DerNode;
  memoizeDer(root, canonical(root));
  const original = cert.verify.bind(cert);
  const memo = new Map<X509Certificate | undefined, boolean>();
  cert.verify = (issuer?: X509Certificate) => {
    let r = memo.get(issuer);
    if (r === undefined) {
      r = original(issuer);
      memo.set(issuer, r);
    }
    return r;
  };
}

/**
 * Entries kept per process-wide memo below: a trusted root has a handful of CA and TSA certificates,
 * and a server holds a few roots at once (refreshes, several trust stores).
 */
const TRUST_MEMO_MAX = 256;

function remember<V>(memo: Map<string, V>, key: string, value: V): V {
  if (memo.size >= TRUST_MEMO_MAX) memo.delete(memo.keys().next().value as string);
  memo.set(key, value);
  return value;
}

/**
 * Verdicts of core's X509Certificate.verify on trusted-root certificates, across verifier instances:
 * every SigstoreBundleVerifier (one per trust store, re-made on each refresh) otherwise imports the
 * root's P-384 key and re-checks its self-signature and its chain (~5 ms a construction, ~50 µs a
 * bundle in the benchmark's loop of 100). Keyed by every byte core's verify() reads — the signature
 * algorithm, the key's SPKI, the signature and the TBS as re-encoded — so a hit is the same
 * computation on the same input, never a lookup by name or digest.
 */
const trustedVerdicts = new Map<string, boolean>();

function verifyKey(cert: X509Certificate, issuer: X509Certificate | undefined): string {
  const key = (issuer ?? cert).publicKey;
  return `${cert.signatureAlgorithm}|${key.toString('base64')}|${cert.signatureValue.toString('base64')}|${cert.tbsCertificate.toDER().toString('base64')}`;
}

function memoizeTrustedCertificate(cert: X509Certificate): void {
  memoizeCertificate(cert);
  const perObject = cert.verify;
  cert.verify = (issuer?: X509Certificate) => {
    let key: string;
    try {
      key = verifyKey(cert, issuer);
    } catch {
      return perObject(issuer);
    }
    const known = trustedVerdicts.get(key);
    return known ?? remember(trustedVerdicts, key, perObject(issuer));
  };
}

export function memoizeTrustedCertVerify(trust: TrustMaterial): void {
  for (const ca of [...trust.certificateAuthorities, ...trust.timestampAuthorities]) {
    for (const cert of ca.certChain) memoizeTrustedCertificate(cert);
  }
}

/**
 * A trusted-root certificate's public key as a KeyObject, imported once per process for the same
 * SPKI bytes (the map key is those bytes, whole): importing a P-384 key from DER costs 0.1–0.6 ms
 * on Node 20's OpenSSL 3.0, and a KeyObject never changes. Throws where createPublicKey throws.
 */
const trustedKeys = new Map<string, KeyObject>();

export function trustedKey(der: Buffer, type: 'spki' | 'pkcs1' = 'spki'): KeyObject {
  const id = `${type}:${der.toString('base64')}`;
  return trustedKeys.get(id) ?? remember(trustedKeys, id, createPublicKey({ key: der, format: 'der', type }));
}

type TrustedRootMessage = Parameters<typeof toTrustMaterial>[0];
type TLogInstance = TrustedRootMessage['tlogs'][number];

const BEGINNING_OF_TIME = new Date(0);
const END_OF_TIME = new Date(8640000000000000);
const PKCS1_KEYS: ReadonlySet<PublicKeyDetails> = new Set([
  PublicKeyDetails.PKCS1_RSA_PKCS1V5, PublicKeyDetails.PKIX_RSA_PKCS1V5, PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256,
  PublicKeyDetails.PKIX_RSA_PKCS1V15_3072_SHA256, PublicKeyDetails.PKIX_RSA_PKCS1V15_4096_SHA256,
]);

/**
 * @sigstore/verify's createTLogAuthority (trust/index.js) with the key from trustedKey(): the same
 * fields from the same message, the same key type rule (RSA PKCS#1 details, else SPKI), and an import
 * that throws where the library's throws; only a second import of the same bytes is skipped.
 */
function tlogAuthority(t: TLogInstance): TrustMaterial['tlogs'][number] {
  const type = PKCS1_KEYS.has(t.publicKey!.keyDetails) ? 'pkcs1' : 'spki';
  return {
    baseURL: t.baseUrl,
    logID: t.checkpointKeyId ? t.checkpointKeyId.keyId : t.logId!.keyId,
    publicKey: trustedKey(t.publicKey!.rawBytes as Buffer, type),
    validFor: { start: t.publicKey!.validFor?.start || BEGINNING_OF_TIME, end: t.publicKey!.validFor?.end || END_OF_TIME },
  };
}

/**
 * toTrustMaterial with the Rekor and CT log keys imported once per process (trustedKey): a verifier
 * is re-made on every trust refresh and per trust store, and each import of a log key costs
 * 0.1–0.2 ms on Node 20's OpenSSL 3.0 (a third of a construction). The certificate authorities are
 * the library's own, parsed anew (the verifier's fallback path reads and memoizes them per object).
 */
export function memoTrustMaterial(root: TrustedRootMessage, keys: Parameters<typeof toTrustMaterial>[1]): TrustMaterial {
  const material = toTrustMaterial({ ...root, tlogs: [], ctlogs: [] }, keys);
  return { ...material, tlogs: root.tlogs.map(tlogAuthority), ctlogs: root.ctlogs.map(tlogAuthority) };
}
