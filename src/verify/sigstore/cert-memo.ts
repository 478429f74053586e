import type { SignedEntity, TrustMaterial } from '@sigstore/verify';

/** The certificate class of @sigstore/verify's own @sigstore/core (it nests a different version). */
type X509Certificate = Extract<SignedEntity['key'], { $case: 'certificate' }>['certificate'];

/**
 * Speed without changing what is checked. @sigstore/verify re-serialises certificates (toDER) for
 * every comparison and signature check, and re-verifies the trusted root's own certificates (the
 * root's self-signature included) for every bundle and every timestamp; that is most of its time.
 * A parsed certificate never changes, so its DER encodings and its verify() result per issuer are
 * memoized: once for the trusted root's CA and TSA certificates, per bundle for the leaf. (The SCT
 * check clones and edits the leaf; the clone is a new object, so it is not affected.)
 */
interface DerNode { toDER(): Buffer; subs: DerNode[] }

function memoizeDer(node: DerNode): void {
  const original = node.toDER;
  let der: Buffer | undefined;
  node.toDER = function toDER(this: DerNode) {
    der ??= original.call(this);
    return der;
  };
  for (const sub of node.subs) memoizeDer(sub);
}

export function memoizeCertificate(cert: X509Certificate): void {
  memoizeDer(cert.root as unknown as DerNode);
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
