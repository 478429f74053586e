import type { SignedEntity, TrustMaterial } from '@sigstore/verify';
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

export function memoizeTrustedCertVerify(trust: TrustMaterial): void {
  for (const ca of [...trust.certificateAuthorities, ...trust.timestampAuthorities]) {
    for (const cert of ca.certChain) memoizeCertificate(cert);
  }
}
