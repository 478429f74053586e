/**
 * The fast path of keyless verification (#14 target 1). @sigstore/verify rebuilds and re-verifies the
 * trusted root's certificate chains for every bundle and timestamp, and re-encodes certificates to DER
 * for every comparison and signature: ~90 % of its time. Here the trust-root work is done once per
 * trust material (chains sorted and checked by @sigstore/verify's own CertificateChainVerifier, issuer
 * keys kept as KeyObjects), and no SignedEntity is built: the leaf certificate and the RFC 3161
 * tokens are read from their raw DER (leaf-cert.ts, tsa-token.ts; zero-copy views), the log entries
 * and the signature content straight from the bundle.
 *
 * It only ever ACCEPTS. It runs the checks of `Verifier.verify` (timestamps → signing certificate +
 * SCTs → transparency logs → signature) and answers with the leaf only when each check is decided
 * exactly as @sigstore/verify decides it; whenever a case is not covered (a key-mode bundle, an
 * unusual chain, a non-canonical DER encoding, a shape core's getters would throw on, several
 * candidate issuers, any failure) it answers null and the caller runs the unmodified Verifier, whose
 * verdict and error stand. So no bundle is accepted here that @sigstore/verify would reject, and
 * every rejection keeps its code (test/sigstore/fast-path.test.ts runs both side by side).
 */
import { createPublicKey, verify as cryptoVerify, createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { SignedEntity, TrustMaterial, Verifier } from '@sigstore/verify';
import { CertificateChainVerifier } from '@sigstore/verify/dist/key/certificate.js';
import { ecSpkiJwk, tbsWithoutExtension } from './der.js';
import { parseLeaf, sctDate, sctHash, sctSignedData, type LeafCert, type Sct } from './leaf-cert.js';
import { parseTsaToken, tsaTokenVerifies, type TsaToken } from './tsa-token.js';
import { inclusionHolds } from './tlog-inclusion.js';
import { trustedKey } from './cert-memo.js';
import { verifyTLogBody } from '@sigstore/verify/dist/tlog/index.js';

/** The certificate class of @sigstore/verify's own @sigstore/core (it nests a different version). */
type X509Certificate = Extract<SignedEntity['key'], { $case: 'certificate' }>['certificate'];
type CertAuthority = TrustMaterial['certificateAuthorities'][number];
type TLogAuthority = TrustMaterial['ctlogs'][number];
type SignatureContent = SignedEntity['signature'];
/** What Verifier.verifyTimestamps reads of a log entry. */
type TLogEntry = { integratedTime: string; inclusionPromise?: unknown; logId?: { keyId: Buffer } };

/** Minimum counts (SigstoreBundleVerifier's thresholds). */
export interface Thresholds {
  tlog: number;
  ctlog: number;
  timestamps: number;
}

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
   * The bundle's signing certificate when the bundle verifies — exactly what `Verifier.verify` of
   * its SignedEntity (no policy) accepts, with `signature` as the entity's signature content and
   * the thresholds met as SigstoreBundleVerifier counts them — read from the raw bytes without
   * building a SignedEntity. Null means "not decided here": run the Verifier.
   */
  verify(bundle: Bundle, signature: SignatureContent, thresholds: Thresholds): LeafCert | null {
    const vm = bundle.verificationMaterial;
    const c = vm.content;
    const der = c.$case === 'certificate' ? c.certificate.rawBytes : c.$case === 'x509CertificateChain' ? c.x509CertificateChain.certificates[0]?.rawBytes : undefined;
    if (!der) return null;
    try {
      const leaf = parseLeaf(der);
      if (!leaf) return null;
      const tsas: TsaToken[] = [];
      for (const t of vm.timestampVerificationData?.rfc3161Timestamps ?? []) {
        const token = parseTsaToken(t.signedTimestamp);
        if (!token) return null;
        tsas.push(token);
      }
      // toSignedEntity's timestamps: the entries with an integrated time, then the RFC 3161 tokens.
      const logged = vm.tlogEntries.filter((e) => e.integratedTime && e.integratedTime !== '0');
      if (vm.tlogEntries.length < thresholds.tlog || leaf.scts.length < thresholds.ctlog) return null;
      const timestamps = this.timestamps(logged, tsas, signature.signature);
      // The threshold counts verified timestamps only (checkThresholds in verifier.ts says why).
      if (!timestamps || timestamps.length < thresholds.timestamps) return null;
      const issuer = this.signingCertificate(leaf, timestamps);
      if (!issuer || !this.scts(leaf, issuer)) return null;
      // Verifier.verifyTLogs (its threshold is 0): inclusion (tlog-inclusion.ts), then the body.
      for (const entry of vm.tlogEntries) {
        if (!inclusionHolds(entry, this.trust.tlogs)) return null;
        verifyTLogBody(entry, signature);
      }
      // The leaf's key, from its raw SPKI (canonical: the bytes core's publicKey getter re-encodes).
      // P-256 as a JWK, everything else from the SPKI DER: on Node 20.20 / OpenSSL 3.0.19 a JWK
      // import runs the full EC key check (a scalar multiplication by the order): P-256 ~110 us
      // as JWK vs ~240 us as SPKI, but P-384 ~420-600 us as JWK vs ~120-190 us as SPKI (which
      // still rejects a point off the curve).
      const jwk = ecSpkiJwk(leaf.spki);
      const key = jwk?.crv === 'P-256' ? createPublicKey({ key: jwk, format: 'jwk' }) : createPublicKey({ key: leaf.spki, format: 'der', type: 'spki' });
      return signature.verifySignature(key) ? leaf : null;
    } catch {
      return null;
    }
  }

  /** Verifier.verifyTimestamps with the TSA chains checked once. */
  private timestamps(logged: TLogEntry[], tsas: TsaToken[], data: Buffer): Date[] | null {
    const out: { type: string; logID: Buffer; timestamp: Date }[] = [];
    for (const e of logged) {
      if (!e.inclusionPromise) continue;
      if (!e.logId) return null;
      out.push({ type: 'transparency-log', logID: e.logId.keyId, timestamp: new Date(Number(e.integratedTime) * 1000) });
    }
    for (const t of tsas) {
      if (!this.tsaVerifies(t, data)) return null;
      out.push({ type: 'timestamp-authority', logID: t.signerSerialNumber, timestamp: t.signingTime });
    }
    for (let i = 0; i < out.length; i++) for (let j = i + 1; j < out.length; j++) if (maybeSameTimestamp(out[i], out[j])) return null;
    return out.map((t) => t.timestamp);
  }

  /** timestamp/tsa.ts verifyRFC3161Timestamp: the first authority that verifies the token. */
  private tsaVerifies(ts: TsaToken, data: Buffer): boolean {
    const signingTime = ts.signingTime;
    for (const ca of this.trust.timestampAuthorities) {
      if (!(ca.validFor.start <= signingTime && ca.validFor.end >= signingTime)) continue;
      const plan = this.tsas.get(ca) as TsaPlan;
      if (ca.certChain.length === 0 || !bufferEqual(plan.serial, ts.signerSerialNumber) || !bufferEqual(plan.issuer, ts.signerIssuer)) continue;
      if (!plan.path || !plan.key || !plan.path.every((c) => validAt(c, signingTime))) continue;
      // @sigstore/verify goes on to the next authority when one does not verify the token.
      if (tsaTokenVerifies(ts, data, plan.key)) return true;
    }
    return false;
  }

  /** key/index.ts verifyCertificate (the chain for every timestamp): the leaf's issuer, or null. */
  private signingCertificate(leaf: LeafCert, timestamps: Date[]): ChainCert | null {
    // A leaf that could be its own issuer, or a CA, takes @sigstore/verify's general path search.
    if (leaf.subject.equals(leaf.issuer) || leaf.isCA) return null;
    if (leaf.aki && leaf.ski && leaf.ski.equals(leaf.aki)) return null;
    let issuer: ChainCert | null = null;
    const issuers = new Map<CaPlan, ChainCert | null>();
    for (const ts of timestamps) {
      const first = this.trust.certificateAuthorities.find((ca) => ca.validFor.start <= ts && ca.validFor.end >= ts);
      const plan = first && this.cas.get(first);
      if (!plan) return null;
      if (!issuers.has(plan)) issuers.set(plan, this.issuerIn(plan, leaf));
      issuer = issuers.get(plan) as ChainCert | null;
      if (!issuer || !validAt(leaf, ts) || !(issuer.path as ChainCert[]).every((c) => validAt(c, ts))) return null;
    }
    return issuer;
  }

  /**
   * The one certificate of the CA that issued the leaf, found as findIssuer() finds candidates
   * (authority/subject key id, else names; then the signature), with the leaf's name chained to it.
   * Null unless there is exactly one and the leaf cannot take part in the chain's own paths.
   */
  private issuerIn(plan: CaPlan, leaf: LeafCert): ChainCert | null {
    const candidates: ChainCert[] = [];
    for (const c of plan.certs) {
      if (bufferEqual(c.der, leaf.der)) return null;
      // Could the leaf be a candidate issuer of this CA certificate (it is in the local pool)?
      if (c.aki && leaf.ski ? leaf.ski.equals(c.aki) : leaf.subject.equals(c.issuer)) return null;
      const matches = leaf.aki && c.ski ? c.ski.equals(leaf.aki) : c.subject.equals(leaf.issuer);
      if (matches) candidates.push(c);
    }
    const verified = candidates.filter((c) => {
      try {
        return cryptoVerify(leaf.signatureAlgorithm, leaf.tbs, c.key, leaf.signatureValue);
      } catch {
        return false;
      }
    });
    if (verified.length !== 1) return null;
    const issuer = verified[0];
    if (!issuer.path || !leaf.issuer.equals(issuer.subject)) return null;
    return issuer;
  }

  /** key/sct.ts verifySCTs + the Verifier's duplicate-SCT check, the pre-certificate cut out of the raw TBS. */
  private scts(leaf: LeafCert, issuer: ChainCert): boolean {
    if (leaf.sctIndex < 0 || leaf.scts.length === 0) return true;
    const tbs = tbsWithoutExtension(leaf.der, leaf.layout, leaf.sctIndex);
    if (!tbs) return false;
    const len = Buffer.from([(tbs.length >> 16) & 0xff, (tbs.length >> 8) & 0xff, tbs.length & 0xff]);
    const preCert = Buffer.concat([issuer.spkiHash, len, tbs]);
    const ids: Buffer[] = [];
    for (const sct of leaf.scts) {
      const at = sctDate(sct);
      const logs = this.trust.ctlogs.filter((log: TLogAuthority) => log.logID.equals(sct.logID) && log.validFor.start <= at && at <= log.validFor.end);
      if (logs.length === 0) return false;
      const signed = sctSignedData(sct, preCert);
      if (!logs.some((log) => sctVerifies(sct, signed, log.publicKey))) return false;
      ids.push(sct.logID);
    }
    // The Verifier's containsDupes (isDeepStrictEqual) on two Buffers: equal bytes.
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) if (ids[i].equals(ids[j])) return false;
    return true;
  }
}

/**
 * False only where the Verifier's containsDupes (isDeepStrictEqual) tells the two timestamps apart:
 * another type, other log id bytes or another valid time. An invalid date counts as a duplicate
 * (the bundle then takes the Verifier's path), so no deep-equality corner case is decided here.
 */
function maybeSameTimestamp(a: { type: string; logID: Buffer; timestamp: Date }, b: { type: string; logID: Buffer; timestamp: Date }): boolean {
  const ta = a.timestamp.getTime();
  const tb = b.timestamp.getTime();
  if (Number.isNaN(ta) || Number.isNaN(tb)) return true;
  return a.type === b.type && ta === tb && a.logID.equals(b.logID);
}

/** core's SignedCertificateTimestamp.verify (crypto.verify that answers false where Node throws). */
function sctVerifies(sct: Sct, signed: Buffer, key: KeyObject): boolean {
  try {
    return cryptoVerify(sctHash(sct), signed, key, sct.signature);
  } catch {
    return false;
  }
}

function chainCert(cert: X509Certificate): ChainCert | null {
  return safe(() => {
    const der = cert.root.toDER();
    const spki = cert.publicKey;
    return {
      cert, der, subject: cert.subject, issuer: cert.issuer, notBefore: cert.notBefore, notAfter: cert.notAfter,
      ski: cert.extSubjectKeyID?.keyIdentifier, aki: cert.extAuthorityKeyID?.keyIdentifier,
      spki, spkiHash: createHash('sha256').update(spki).digest(), key: trustedKey(spki), path: null,
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
    key: leaf ? safe(() => trustedKey(leaf.publicKey)) ?? null : null,
    serial: leaf ? leaf.serialNumber : Buffer.alloc(0),
    issuer: leaf ? leaf.issuer : Buffer.alloc(0),
  };
}
