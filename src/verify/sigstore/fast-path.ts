/**
 * The fast path of keyless verification (#14 target 1). @sigstore/verify rebuilds and re-verifies the
 * trusted root's certificate chains for every bundle and timestamp, and re-encodes certificates to DER
 * for every comparison and signature: ~90 % of its time. Here the trust-root work is done once per
 * trust material (chains sorted and checked by @sigstore/verify's own CertificateChainVerifier, issuer
 * keys kept as KeyObjects), and the per-bundle work uses the leaf's raw DER, parsed once.
 *
 * It only ever ACCEPTS. It runs the same checks in the same order as `Verifier.verify` (timestamps →
 * signing certificate + SCTs → transparency logs → signature) and answers true only when each check
 * is decided exactly as @sigstore/verify decides it; whenever a case is not covered (a key-mode
 * bundle, an unusual chain, a non-canonical DER encoding, several candidate issuers, any failure) it
 * answers false and the caller runs the unmodified Verifier, whose verdict and error stand. So no
 * bundle is accepted here that @sigstore/verify would reject, and every rejection keeps its code.
 */
import { createPublicKey, verify as cryptoVerify, createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { SignedEntity, TrustMaterial, Verifier } from '@sigstore/verify';
import { CertificateChainVerifier } from '@sigstore/verify/dist/key/certificate.js';
import { certLayout, ecSpkiJwk, type CertLayout, isCanonicalDer, rawToDer, tbsWithoutExtension } from './der.js';

/** The certificate class of @sigstore/verify's own @sigstore/core (it nests a different version). */
type X509Certificate = Extract<SignedEntity['key'], { $case: 'certificate' }>['certificate'];
type CertAuthority = TrustMaterial['certificateAuthorities'][number];
type Rfc3161 = Extract<SignedEntity['timestamps'][number], { $case: 'timestamp-authority' }>['timestamp'];
type TLogAuthority = TrustMaterial['ctlogs'][number];

const SCT_OID = '1.3.6.1.4.1.11129.2.4.2';

/** What is computed once per trusted certificate. */
interface ChainCert {
  cert: X509Certificate;
  der: Buffer;
  subject: Buffer;
  issuer: Buffer;
  ski?: Buffer;
  aki?: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  spkiHash: Buffer;
  key: KeyObject;
  /** @sigstore/verify's sorted path from this certificate to its root (minus the repeated root), checked; null if it has none. */
  path: ChainCert[] | null;
}

interface CaPlan {
  certs: ChainCert[];
}

interface TsaPlan {
  /** The TSA's signing certificate chain, sorted and checked; null when @sigstore/verify finds none. */
  path: ChainCert[] | null;
  key: KeyObject | null;
  serial: Buffer;
  issuer: Buffer;
}

/** The private parts of Verifier the fast path reuses unchanged. */
interface VerifierInternals {
  verifyTLogs(entity: SignedEntity): void;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function bufferEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function validAt(c: { notBefore: Date; notAfter: Date }, d: Date): boolean {
  return c.notBefore <= d && d <= c.notAfter;
}

export class FastPath {
  private readonly cas: Map<CertAuthority, CaPlan | null> = new Map();
  private readonly tsas: Map<CertAuthority, TsaPlan> = new Map();

  constructor(private readonly trust: TrustMaterial, private readonly verifier: Verifier) {
    for (const ca of trust.certificateAuthorities) this.cas.set(ca, planCa(ca.certChain));
    for (const ca of trust.timestampAuthorities) this.tsas.set(ca, planTsa(ca.certChain));
  }

  /**
   * True when the entity verifies (exactly what `Verifier.verify(entity)` without a policy accepts,
   * given the signing key as a KeyObject); false means "not decided here": run the Verifier.
   */
  verify(entity: SignedEntity, leafDer: Uint8Array | undefined, tsaDers: Uint8Array[]): boolean {
    if (entity.key.$case !== 'certificate' || !leafDer) return false;
    try {
      const timestamps = this.timestamps(entity, tsaDers);
      if (!timestamps) return false;
      const layout = this.signingCertificate(entity.key.certificate, leafDer, timestamps);
      if (!layout) return false;
      (this.verifier as unknown as VerifierInternals).verifyTLogs(entity);
      // The leaf's key, from its raw SPKI (canonical: the bytes core's publicKey getter re-encodes).
      // P-256 as a JWK, everything else from the SPKI DER: on Node 20.20 / OpenSSL 3.0.19 a JWK
      // import runs the full EC key check (a scalar multiplication by the order): P-256 ~110 us
      // as JWK vs ~240 us as SPKI, but P-384 ~420-600 us as JWK vs ~120-190 us as SPKI (which
      // still rejects a point off the curve).
      const spki = leafDer.subarray(layout.spki.start, layout.spki.end);
      const jwk = ecSpkiJwk(spki);
      const key = jwk?.crv === 'P-256'
        ? createPublicKey({ key: jwk, format: 'jwk' })
        : createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength), format: 'der', type: 'spki' });
      return entity.signature.verifySignature(key);
    } catch {
      return false;
    }
  }

  /** Verifier.verifyTimestamps with the TSA chains checked once. */
  private timestamps(entity: SignedEntity, tsaDers: Uint8Array[]): Date[] | null {
    const out: { type: string; logID: Buffer; timestamp: Date }[] = [];
    let tsa = 0;
    for (const t of entity.timestamps) {
      if (t.$case === 'timestamp-authority') {
        // The token as the bundle carries it (toSignedEntity parsed these bytes, in this order).
        const der = tsaDers[tsa++];
        if (!der || !isCanonicalDer(der)) return null;
        rawToDer((t.timestamp as unknown as { signedAttrsObj: Parameters<typeof rawToDer>[0] }).signedAttrsObj);
        rawToDer(t.timestamp.tstInfo.root);
        if (!this.tsaVerifies(t.timestamp, entity.signature.signature)) return null;
        out.push({ type: 'timestamp-authority', logID: t.timestamp.signerSerialNumber, timestamp: t.timestamp.signingTime });
      } else if (t.tlogEntry.inclusionPromise) {
        if (!t.tlogEntry.logId) return null;
        out.push({ type: 'transparency-log', logID: t.tlogEntry.logId.keyId, timestamp: new Date(Number(t.tlogEntry.integratedTime) * 1000) });
      }
    }
    for (let i = 0; i < out.length; i++) for (let j = i + 1; j < out.length; j++) if (isDeepStrictEqual(out[i], out[j])) return null;
    return out.map((t) => t.timestamp);
  }

  private tsaVerifies(ts: Rfc3161, data: Buffer): boolean {
    const signingTime = ts.signingTime;
    for (const ca of this.trust.timestampAuthorities) {
      if (!(ca.validFor.start <= signingTime && ca.validFor.end >= signingTime)) continue;
      const plan = this.tsas.get(ca) as TsaPlan;
      if (ca.certChain.length === 0 || !bufferEqual(plan.serial, ts.signerSerialNumber) || !bufferEqual(plan.issuer, ts.signerIssuer)) continue;
      if (!plan.path || !plan.key || !plan.path.every((c) => validAt(c, signingTime))) continue;
      try {
        ts.verify(data, plan.key);
        return true;
      } catch {
        // @sigstore/verify goes on to the next authority.
      }
    }
    return false;
  }

  /** key/index.ts verifyCertificate + the Verifier's duplicate-SCT check. */
  private signingCertificate(leaf: X509Certificate, der: Uint8Array, timestamps: Date[]): CertLayout | null {
    if (!isCanonicalDer(der)) return null;
    const layout = certLayout(der);
    if (!layout) return null;
    const leafInfo = {
      subject: leaf.subject, issuer: leaf.issuer, notBefore: leaf.notBefore, notAfter: leaf.notAfter,
      ski: leaf.extSubjectKeyID?.keyIdentifier as Buffer | undefined, aki: leaf.extAuthorityKeyID?.keyIdentifier as Buffer | undefined,
    };
    // A leaf that could be its own issuer, or a CA, takes @sigstore/verify's general path search.
    if (leafInfo.subject.equals(leafInfo.issuer) || leaf.extBasicConstraints?.isCA) return null;
    if (leafInfo.aki && leaf.extSubjectKeyID && (leafInfo.ski as Buffer).equals(leafInfo.aki)) return null;
    const tbs = Buffer.from(der.buffer, der.byteOffset + layout.tbs.start, layout.tbs.end - layout.tbs.start);
    let issuer: ChainCert | null = null;
    const issuers = new Map<CaPlan, ChainCert | null>();
    for (const ts of timestamps) {
      const first = this.trust.certificateAuthorities.find((ca) => ca.validFor.start <= ts && ca.validFor.end >= ts);
      const plan = first && this.cas.get(first);
      if (!plan) return null;
      if (!issuers.has(plan)) issuers.set(plan, this.issuerIn(plan, leaf, leafInfo, der, tbs));
      issuer = issuers.get(plan) as ChainCert | null;
      if (!issuer || !validAt(leafInfo, ts) || !(issuer.path as ChainCert[]).every((c) => validAt(c, ts))) return null;
    }
    if (!issuer) return null;
    return this.scts(leaf, der, layout, issuer) ? layout : null;
  }

  /**
   * The one certificate of the CA that issued the leaf, found as findIssuer() finds candidates
   * (authority/subject key id, else names; then the signature), with the leaf's name chained to it.
   * Null unless there is exactly one and the leaf cannot take part in the chain's own paths.
   */
  private issuerIn(plan: CaPlan, leaf: X509Certificate, info: { subject: Buffer; issuer: Buffer; ski?: Buffer; aki?: Buffer }, der: Uint8Array, tbs: Buffer): ChainCert | null {
    const candidates: ChainCert[] = [];
    for (const c of plan.certs) {
      if (bufferEqual(c.der, der)) return null;
      // Could the leaf be a candidate issuer of this CA certificate (it is in the local pool)?
      if (c.aki && leaf.extSubjectKeyID ? (info.ski as Buffer).equals(c.aki) : info.subject.equals(c.issuer)) return null;
      const matches = info.aki && c.ski ? c.ski.equals(info.aki) : c.subject.equals(info.issuer);
      if (matches) candidates.push(c);
    }
    const verified = candidates.filter((c) => {
      try {
        return cryptoVerify(leaf.signatureAlgorithm, tbs, c.key, leaf.signatureValue);
      } catch {
        return false;
      }
    });
    if (verified.length !== 1) return null;
    const issuer = verified[0];
    if (!issuer.path || !info.issuer.equals(issuer.subject)) return null;
    return issuer;
  }

  /** key/sct.ts with the pre-certificate cut out of the raw TBS. */
  private scts(leaf: X509Certificate, der: Uint8Array, layout: CertLayout, issuer: ChainCert): boolean {
    const exts = leaf.extensions;
    const index = exts.findIndex((e) => e.subs[0].toOID() === SCT_OID);
    if (index < 0) return true;
    const sctExt = leaf.extSCT;
    const scts = sctExt?.signedCertificateTimestamps ?? [];
    if (scts.length === 0) return true;
    const tbs = tbsWithoutExtension(der, layout, index);
    if (!tbs) return false;
    const len = Buffer.from([(tbs.length >> 16) & 0xff, (tbs.length >> 8) & 0xff, tbs.length & 0xff]);
    const preCert = Buffer.concat([issuer.spkiHash, len, tbs]);
    const ids: Buffer[] = [];
    for (const sct of scts) {
      const logs = this.trust.ctlogs.filter((log: TLogAuthority) => log.logID.equals(sct.logID) && log.validFor.start <= sct.datetime && sct.datetime <= log.validFor.end);
      if (!logs.some((log) => sct.verify(preCert, log.publicKey))) return false;
      ids.push(sct.logID);
    }
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) if (isDeepStrictEqual(ids[i], ids[j])) return false;
    return true;
  }
}

function chainCert(cert: X509Certificate): ChainCert | null {
  return safe(() => {
    const der = cert.root.toDER();
    const spki = cert.publicKey;
    return {
      cert, der, subject: cert.subject, issuer: cert.issuer, notBefore: cert.notBefore, notAfter: cert.notAfter,
      ski: cert.extSubjectKeyID?.keyIdentifier, aki: cert.extAuthorityKeyID?.keyIdentifier,
      spki, spkiHash: createHash('sha256').update(spki).digest(), key: createPublicKey({ key: spki, format: 'der', type: 'spki' }), path: null,
    };
  }) ?? null;
}

/** @sigstore/verify's CertificateChainVerifier, minus the per-date check: sort() and checkPath(). */
interface ChainVerifierInternals {
  sort(): X509Certificate[];
  checkPath(path: X509Certificate[]): void;
}

function sortedPath(untrusted: X509Certificate, trusted: X509Certificate[]): X509Certificate[] | null {
  return safe(() => {
    const v = new CertificateChainVerifier({ untrustedCert: untrusted, trustedCerts: trusted, timestamp: new Date(0) }) as unknown as ChainVerifierInternals;
    const path = v.sort();
    v.checkPath(path);
    return path;
  }) ?? null;
}

/**
 * A CA the fast path can serve: every certificate parses, none is listed twice, and each has the
 * path @sigstore/verify would build for a leaf it issued (sorted, CA flags, name chaining and path
 * lengths as checkPath judges them one position further down).
 */
function planCa(chain: X509Certificate[]): CaPlan | null {
  const certs = chain.map(chainCert);
  if (certs.some((c) => !c)) return null;
  const all = certs as ChainCert[];
  for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) if (all[i].der.equals(all[j].der)) return null;
  const byCert = new Map(all.map((c) => [c.cert, c]));
  for (const c of all) {
    const path = sortedPath(c.cert, chain);
    if (!path || !path.every((p) => byCert.has(p))) continue;
    const mapped = path.map((p) => byCert.get(p) as ChainCert);
    // checkPath on [leaf, ...path]: path[k] sits at index k + 1.
    const ok = safe(() => path.every((p, k) => {
      const bc = p.extBasicConstraints;
      return p.isCA && !(bc?.isCA && bc.pathLenConstraint !== undefined && bc.pathLenConstraint < BigInt(k));
    }));
    if (ok) c.path = mapped;
  }
  return { certs: all };
}

function planTsa(chain: X509Certificate[]): TsaPlan {
  const [leaf, ...cas] = chain;
  const path = leaf ? sortedPath(leaf, cas) : null;
  const certs = path?.map(chainCert);
  return {
    path: certs && certs.every((c) => c) ? (certs as ChainCert[]) : null,
    key: leaf ? safe(() => createPublicKey({ key: leaf.publicKey, format: 'der', type: 'spki' })) ?? null : null,
    serial: leaf ? leaf.serialNumber : Buffer.alloc(0),
    issuer: leaf ? leaf.issuer : Buffer.alloc(0),
  };
}
