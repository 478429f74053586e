/**
 * Sigstore bundle verification (v0.1–v0.3), offline, on @sigstore/verify 3.1 with what it leaves out:
 * the in-toto subject is checked against the artifact/image digest, identities are matched anchored
 * and with decoded claims, tlogs without a validity start are refused (trusted-root.ts), Rekor v2
 * entries are compared with the entry rebuilt from the bundle and DSSE ones accepted (rekor-v2.ts). Trust material and the @sigstore/verify Verifier are built
 * once per instance and reused; results are cached (cache.ts).
 *
 * Stages, in order: parse → bundle/artifact binding → thresholds → @sigstore/verify (timestamps, key
 * material, log entries, signature) → identity policy → in-toto subject. Codes: MALFORMED_BUNDLE,
 * INVALID_SIGNATURE, UNTRUSTED_ROOT, LOG_PROOF_INVALID, UNKNOWN_KEY, INSUFFICIENT_LOG_COVERAGE,
 * THRESHOLD_NOT_MET, IDENTITY_MISMATCH, SUBJECT_MISMATCH.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import { toSignedEntity, Verifier, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { signatureContent } from '@sigstore/verify/dist/bundle/index.js';
import { CtError } from '../../core/errors.js';
import { canonicalize } from '../../core/jcs.js';
import { isDigest, sha256Digest, sha256Hex } from '../../core/digest.js';
import { keyIdOf } from '../../trust/keyid.js';
import type { VerifiedAttestation, VerifiedLogEntry, VerifiedSigner } from '../evidence.js';
import { tlogOperators, type LoadedTrustedRoot } from './trusted-root.js';
import { assertIdentityPolicy, certIdentity, checkIdentity, describePolicy, identityOf, type CertIdentity, type IdentityPolicy } from './identity.js';
import { acceptRekorV2DsseDigest, checkRekorV2Entries, withSignature } from './rekor-v2.js';
import { verifyP256Prehashed } from './prehash.js';
import { VerificationCache } from './cache.js';
import { memoizeCertificate, memoizeTrustedCertVerify, memoTrustMaterial } from './cert-memo.js';
import { FastPath } from './fast-path.js';
import { checkpointHazard } from './tlog-inclusion.js';
import { checkSubject, inTotoStatement, parseBundleJson, strictBundleFromJSON } from './shape.js';

export interface SigstoreThresholds {
  /** Transparency log entries (default 1). */
  tlog?: number;
  /** SCTs in the Fulcio certificate (default 1). */
  ctlog?: number;
  /** Verified timestamps, TSA and tlog integrated times together (default 1). */
  timestamps?: number;
}

export interface SigstoreVerifierOptions {
  trustedRoot: LoadedTrustedRoot;
  /** Key mode: bundles that carry a public-key hint verify against this key. */
  publicKey?: KeyObject;
  thresholds?: SigstoreThresholds;
  /** Entries kept in the result cache (0 disables it). */
  cacheSize?: number;
}

export interface SigstoreVerifyRequest {
  /** Required for certificate (keyless) bundles, unless anyIdentity. */
  policy?: IdentityPolicy;
  /**
   * Keyless bundles of any identity verify (chain, SCTs, logs, timestamps, signature all checked);
   * the caller judges the returned signer's identity itself (a policy set's keyless signers,
   * attestation-verifier.ts). Never set it without doing so.
   */
  anyIdentity?: boolean;
  /** The artifact's bytes: message signatures are verified over them; DSSE subjects against their digest. */
  artifact?: Buffer;
  /** `sha256:<hex>` of the artifact or image, when the bytes are not at hand. */
  digest?: string;
}

export interface SigstoreVerification {
  kind: 'dsse' | 'message';
  mediaType: string;
  bundleDigest: string;
  signer: VerifiedSigner;
  logEntries: VerifiedLogEntry[];
  logOperators: string[];
  /** DSSE in-toto bundles: the verified attestation, as the report combiner takes it. */
  attestation?: VerifiedAttestation;
  /** The digest the artifact / subject was bound to. */
  digest: string;
}

/** The certificate class of @sigstore/verify's own @sigstore/core (it nests a different version). */
type X509Certificate = Extract<SignedEntity['key'], { $case: 'certificate' }>['certificate'];

type Outcome = { ok: SigstoreVerification } | { err: CtError };

export class SigstoreBundleVerifier {
  readonly trustedRoot: LoadedTrustedRoot;
  /** Root digest plus key id: the trust part of the cache key. */
  readonly trustDigest: string;
  private readonly trust: TrustMaterial;
  private readonly verifier: Verifier;
  private readonly fast: FastPath;
  private readonly thresholds: Required<SigstoreThresholds>;
  private readonly operators: Map<string, { operator: string; baseUrl: string }>;
  private readonly cache: VerificationCache<Outcome> | null;
  private readonly publicKey?: KeyObject;

  constructor(o: SigstoreVerifierOptions) {
    this.trustedRoot = o.trustedRoot;
    this.publicKey = o.publicKey;
    this.thresholds = { tlog: o.thresholds?.tlog ?? 1, ctlog: o.thresholds?.ctlog ?? 1, timestamps: o.thresholds?.timestamps ?? 1 };
    const key = o.publicKey;
    // Key mode (`--key`): any hint resolves to the given key, as cosign does; it never expires.
    const keyFinder = (hint: string) => {
      if (!key) throw new CtError('UNKNOWN_KEY', `bundle names key ${JSON.stringify(hint)} but no public key was given (--key)`, { hint });
      return { publicKey: key, validFor: () => true };
    };
    this.trust = memoTrustMaterial(o.trustedRoot.root, keyFinder);
    memoizeTrustedCertVerify(this.trust);
    this.verifier = new Verifier(this.trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    this.fast = new FastPath(this.trust, this.verifier);
    this.operators = tlogOperators(o.trustedRoot);
    this.trustDigest = sha256Digest(`${o.trustedRoot.digest}|${key ? keyIdOf(key) : '-'}`);
    this.cache = o.cacheSize === 0 ? null : new VerificationCache<Outcome>(o.cacheSize ?? 4096);
  }

  clearCache(): void {
    this.cache?.clear();
  }

  /** Verifies one bundle (raw bytes, text or parsed JSON). Throws CtError on any rejection. */
  verify(input: Buffer | string | unknown, req: SigstoreVerifyRequest): SigstoreVerification {
    const raw = typeof input === 'string' || Buffer.isBuffer(input) ? input : undefined;
    const bundleDigest = raw !== undefined ? sha256Digest(raw) : sha256Digest(canonicalize(input));
    if (req.digest !== undefined && !isDigest(req.digest)) throw new CtError('USAGE', `artifact digest: not sha256:<64 hex>: ${req.digest}`, { digest: req.digest });
    const digest = req.artifact ? sha256Digest(req.artifact) : req.digest;
    if (req.artifact && req.digest && req.digest !== digest) throw new CtError('DIGEST_MISMATCH', `artifact digest ${digest} is not the given ${req.digest}`, { expected: req.digest, actual: digest });
    if (req.policy) assertIdentityPolicy(req.policy);
    // The cache key (its policy digest canonicalises and hashes the policy) only when there is a cache.
    const key = this.cache ? `${bundleDigest}|${digest ?? '-'}|${req.artifact ? 'bytes' : 'digest'}|${this.trustDigest}|${policyDigest(req.policy, req.anyIdentity === true, this.thresholds)}` : '';
    const hit = this.cache?.get(key);
    if (hit) {
      if ('err' in hit) throw hit.err;
      return hit.ok;
    }
    let outcome: Outcome;
    try {
      outcome = { ok: this.verifyUncached(raw !== undefined ? parseBundleJson(raw) : input, raw !== undefined, bundleDigest, digest, req) };
    } catch (e) {
      if (!(e instanceof CtError)) throw e;
      outcome = { err: e };
    }
    this.cache?.set(key, outcome);
    if ('err' in outcome) throw outcome.err;
    return outcome.ok;
  }

  private verifyUncached(json: unknown, fromText: boolean, bundleDigest: string, digest: string | undefined, req: SigstoreVerifyRequest): SigstoreVerification {
    const bundle = strictBundleFromJSON(json, fromText);
    // Before either path hands a checkpoint to @sigstore/verify (tlog-inclusion.ts says why).
    for (const [i, entry] of bundle.verificationMaterial.tlogEntries.entries()) {
      const envelope = entry.inclusionProof?.checkpoint?.envelope;
      const hazard = envelope ? checkpointHazard(envelope, this.trust.tlogs) : undefined;
      if (hazard === undefined) continue;
      const where = `tlogEntries[${i}].inclusionProof.checkpoint`;
      if (hazard.reason === 'count') {
        throw new CtError('LOG_PROOF_INVALID', `transparency log entry ${i}: checkpoint has more than ${hazard.limit} signature lines`, { where, limit: hazard.limit });
      }
      throw new CtError('LOG_PROOF_INVALID', `transparency log entry ${i}: checkpoint signature for a trusted log names ${JSON.stringify(hazard.name)}, a regular expression, not a log name`, { where, name: hazard.name });
    }
    const kind = bundle.content.$case === 'dsseEnvelope' ? 'dsse' : 'message';
    if (kind === 'message') bindMessage(bundle, req.artifact, digest);
    else if (digest === undefined) throw new CtError('USAGE', 'a DSSE bundle is verified against an artifact or image digest; none given', {});

    // The fast path accepts only what the Verifier accepts; anything else gets the Verifier's verdict.
    const fast = req.policy || req.anyIdentity ? this.fastIdentity(bundle, req.artifact) : undefined;
    const id = fast ?? this.verifyEntity(bundle, req);
    try {
      let signer: VerifiedSigner;
      if (id) {
        if (req.policy) checkIdentity(req.policy, id);
        else if (!req.anyIdentity) throw new CtError('POLICY_INVALID', 'a keyless bundle needs an identity policy (issuer and subject)', {});
        signer = { kind: 'keyless', issuer: id.issuer ?? undefined, subject: id.subject ?? undefined, claims: id.claims };
      } else {
        signer = { kind: 'key', keyId: keyIdOf(this.publicKey as KeyObject) };
      }

      const logEntries = bundle.verificationMaterial.tlogEntries.map((t): VerifiedLogEntry => {
        const logId = Buffer.from(t.logId?.keyId ?? []).toString('hex');
        // An integrated time counts (and is reported) only under a signed entry timestamp: an
        // inclusion proof covers the entry's body, not the time the bundle claims beside it.
        const integratedTime = t.inclusionPromise ? Number(t.integratedTime) : 0;
        return { logId, operator: this.operators.get(logId)?.operator ?? logId, logIndex: Number(t.logIndex), integratedTime, kind: 'rekor' };
      });
      const logOperators = [...new Set(logEntries.map((l) => l.operator))].sort();
      const result: SigstoreVerification = { kind, mediaType: bundle.mediaType, bundleDigest, signer, logEntries, logOperators, digest: digest as string };
      if (bundle.content.$case === 'dsseEnvelope') {
        const env = bundle.content.dsseEnvelope;
        const statement = inTotoStatement(env.payloadType, env.payload);
        checkSubject(statement, digest as string);
        result.attestation = {
          digest: sigstoreEnvelopeDigest(bundle),
          source: 'sigstore',
          predicateType: statement.predicateType,
          predicate: statement.predicate,
          subjects: statement.subject.map((s) => ({ name: s.name, digest: s.digest })),
          signers: [signer],
          logEntries,
          logOperators,
        };
      }
      return result;
    } catch (e) {
      throw withIdentity(e, id, req);
    }
  }

  /**
   * The signer's identity when the fast path (fast-path.ts) verifies the bundle — the certificate
   * and TSA tokens read from their raw bytes, no SignedEntity built — and the Rekor v2 entries are
   * the ones rebuilt from it; undefined when it does not decide (the Verifier then does).
   */
  private fastIdentity(bundle: Bundle, artifact: Buffer | undefined): CertIdentity | undefined {
    // Only the signature content of the entity toSignedEntity would build is read (with the same
    // Rekor v2 and digest-only wrappers); the key and timestamps come from the raw bytes.
    const light = { signature: signatureContent(bundle, artifact), tlogEntries: bundle.verificationMaterial.tlogEntries, timestamps: [] } as unknown as SignedEntity;
    let entity = acceptRekorV2DsseDigest(light, bundle);
    if (bundle.content.$case === 'messageSignature' && !artifact) entity = overDigest(entity, bundle);
    const leaf = this.fast.verify(bundle, entity.signature, this.thresholds);
    if (!leaf) return undefined;
    try {
      checkRekorV2Entries(bundle, this.publicKey);
    } catch {
      return undefined;
    }
    // The first extension with an OID wins, as in core's findExtension.
    const byOid = new Map<string, Buffer>();
    for (const e of leaf.extensions) if (!byOid.has(e.oid)) byOid.set(e.oid, e.value);
    return identityOf(leaf.san, (oid) => byOid.get(oid));
  }

  /**
   * @sigstore/verify on the bundle's SignedEntity (timestamps, key material, log entries, signature)
   * and the Rekor v2 entry rebuild. The signer's identity, null in key mode; throws the rejection.
   */
  private verifyEntity(bundle: Bundle, req: SigstoreVerifyRequest): CertIdentity | null {
    let entity: SignedEntity;
    // @sigstore/core's parser tries every OCTET STRING as DER and throws when it is not: without stack
    // traces those throws cost next to nothing (they were a tenth of verification time).
    const stackTraceLimit = Error.stackTraceLimit;
    try {
      Error.stackTraceLimit = 0;
      entity = acceptRekorV2DsseDigest(toSignedEntity(bundle, req.artifact), bundle);
      if (bundle.content.$case === 'messageSignature' && !req.artifact) entity = overDigest(entity, bundle);
    } catch (e) {
      throw new CtError('MALFORMED_BUNDLE', `bundle verification material does not parse: ${(e as Error).message}`, { where: 'verificationMaterial' }, { cause: e });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    const cert = entity.key.$case === 'certificate' ? entity.key.certificate : null;
    if (cert && !req.policy && !req.anyIdentity) throw new CtError('POLICY_INVALID', 'a keyless bundle needs an identity policy (issuer and subject)', {});
    if (!cert && !this.publicKey) throw new CtError('UNKNOWN_KEY', 'the bundle is signed with a key and no public key was given (--key)', {});
    try {
      this.checkThresholds(entity, cert);
      try {
        if (cert) memoizeCertificate(cert);
        this.verifier.verify(entity);
        // Never the logged body alone: each Rekor v2 entry must be the one rebuilt from the bundle.
        checkRekorV2Entries(bundle, this.publicKey);
      } catch (e) {
        // A body mismatch @sigstore/verify found is named (digest, signature, key) by the rebuild.
        if ((e as { code?: string }).code === 'TLOG_BODY_ERROR' && !(e as { field?: string }).field) {
          try {
            checkRekorV2Entries(bundle, this.publicKey);
          } catch (named) {
            throw this.mapError(named, entity, cert);
          }
        }
        throw this.mapError(e, entity, cert);
      }
      return cert ? certIdentity(cert) : null;
    } catch (e) {
      throw withIdentity(e, cert ? certIdentity(cert) : null, req);
    }
  }

  private checkThresholds(entity: SignedEntity, cert: X509Certificate | null): void {
    const t = this.thresholds;
    if (entity.tlogEntries.length < t.tlog) {
      throw new CtError('INSUFFICIENT_LOG_COVERAGE', `bundle has ${entity.tlogEntries.length} transparency log entries, ${t.tlog} required`, { expected: t.tlog, actual: entity.tlogEntries.length });
    }
    // Verified timestamps only (what @sigstore/verify's verifyTimestamps uses): RFC 3161 tokens
    // and the integrated times of entries with an inclusion promise. An entry with only an
    // inclusion proof carries a time nobody signed.
    const timestamps = countVerifiableTimestamps(entity);
    if (timestamps < t.timestamps) {
      throw new CtError('THRESHOLD_NOT_MET', `bundle has ${timestamps} verifiable timestamps (RFC 3161, or a log's signed entry timestamp), ${t.timestamps} required`, { threshold: 'timestamps', expected: t.timestamps, actual: timestamps });
    }
    const scts = cert?.extSCT?.signedCertificateTimestamps.length ?? 0;
    if (cert && scts < t.ctlog) {
      throw new CtError('THRESHOLD_NOT_MET', `certificate has ${scts} SCTs, ${t.ctlog} required`, { threshold: 'ctlog', expected: t.ctlog, actual: scts });
    }
  }

  /**
   * @sigstore/verify's codes → ours. Its stages run timestamps and logs before the signature, so a
   * forged signature or payload first shows as a TSA imprint or log body mismatch: whatever failed,
   * a signature that does not verify over the content is reported as INVALID_SIGNATURE.
   */
  private mapError(e: unknown, entity: SignedEntity, cert: X509Certificate | null): CtError {
    if (e instanceof CtError) return e;
    const err = e as { code?: string; message?: string; cause?: { message?: string }; field?: string };
    const msg = `${err.message ?? String(e)}${err.cause?.message ? ` (${err.cause.message})` : ''}`;
    // `field`: what of a Rekor v2 entry differs from the bundle (digest, signature, key), rekor-v2.ts.
    const details = { sigstoreCode: err.code, ...(err.field ? { field: err.field } : {}) };
    if (err.code === 'SIGNATURE_ERROR' || !this.signatureHolds(entity, cert)) {
      return new CtError('INVALID_SIGNATURE', `signature does not verify over the content: ${msg}`, details, { cause: e });
    }
    switch (err.code) {
      case 'CERTIFICATE_ERROR':
      case 'TIMESTAMP_ERROR':
        return new CtError('UNTRUSTED_ROOT', `not issued or timestamped by an authority of the trusted root (${this.trustedRoot.source}): ${msg}`, details, { cause: e });
      case 'PUBLIC_KEY_ERROR':
        return new CtError('UNKNOWN_KEY', msg, details, { cause: e });
      case 'TLOG_BODY_ERROR':
        return new CtError('LOG_PROOF_INVALID', `transparency log entry does not match the bundle: ${msg}`, details, { cause: e });
      default:
        if (typeof err.code === 'string' && err.code.startsWith('TLOG')) {
          return new CtError('LOG_PROOF_INVALID', `transparency log proof does not verify against the trusted root: ${msg}`, details, { cause: e });
        }
        return new CtError('INVALID_SIGNATURE', `verification failed: ${msg}`, details, { cause: e });
    }
  }

  private signatureHolds(entity: SignedEntity, cert: X509Certificate | null): boolean {
    try {
      const key = cert ? createPublicKey({ key: cert.publicKey, format: 'der', type: 'spki' }) : this.publicKey;
      return key ? entity.signature.verifySignature(key) : true;
    } catch {
      return false;
    }
  }
}

/**
 * Every rejection of a keyless bundle states the expected and the actual identity (identity
 * mismatches already do): the certificate's SAN and issuer are added to the message and details.
 */
function withIdentity(e: unknown, actual: CertIdentity | null, req: SigstoreVerifyRequest): unknown {
  if (!(e instanceof CtError) || !actual || e.code === 'IDENTITY_MISMATCH') return e;
  const policy = req.policy;
  const expected = policy ? describePolicy(policy) : req.anyIdentity ? 'an identity the policies trust' : 'no identity policy';
  return new CtError(e.code, `${e.message} [signer: subject ${JSON.stringify(actual.subject)} from issuer ${JSON.stringify(actual.issuer)}; expected ${expected}]`,
    { ...e.details, expectedIdentity: policy ?? null, actualIdentity: { subject: actual.subject, issuer: actual.issuer } }, { cause: e });
}

function policyDigest(p: IdentityPolicy | undefined, any: boolean, t: Required<SigstoreThresholds>): string {
  return sha256Hex(canonicalize({ p: p ?? null, any, t }));
}

/**
 * A message signature covers the artifact: its recorded digest must be the artifact's. Without the
 * bytes (FILE_OR_DIGEST given as a digest) the recorded digest must be the given one and the
 * signature is checked over that digest (P-256 prehash, prehash.ts).
 */
/**
 * The attestation digest of a DSSE Sigstore bundle: sha256 of the JCS form of its envelope as
 * bundleToJSON writes it, the same identity VCS attestations have (logs, revocation, evidence).
 */
export function sigstoreEnvelopeDigest(bundle: Bundle): string {
  if (bundle.content.$case !== 'dsseEnvelope') throw new CtError('MALFORMED_BUNDLE', 'not a DSSE bundle', { where: 'dsseEnvelope' });
  return sha256Digest(envelopeJcs(bundle.content.dsseEnvelope));
}

type Envelope = Extract<Bundle['content'], { $case: 'dsseEnvelope' }>['dsseEnvelope'];

/**
 * canonicalize(envelopeToJSON(env)), written directly: envelopeToJSON leaves out empty fields and
 * writes bytes as standard base64 (no character JSON escapes); JCS orders the keys (payload,
 * payloadType, signatures; keyid, sig) and writes strings as JSON.stringify does.
 * test/sigstore/shape.test.ts compares the two.
 */
export function envelopeJcs(env: Envelope): string {
  const parts: string[] = [];
  if (env.payload.length !== 0) parts.push(`"payload":"${Buffer.from(env.payload).toString('base64')}"`);
  if (env.payloadType !== '') parts.push(`"payloadType":${JSON.stringify(env.payloadType)}`);
  if (env.signatures?.length) {
    const sigs = env.signatures.map((sg) => {
      const f: string[] = [];
      if (sg.keyid !== '') f.push(`"keyid":${JSON.stringify(sg.keyid)}`);
      if (sg.sig.length !== 0) f.push(`"sig":"${Buffer.from(sg.sig).toString('base64')}"`);
      return `{${f.join(',')}}`;
    });
    parts.push(`"signatures":[${sigs.join(',')}]`);
  }
  return `{${parts.join(',')}}`;
}

function bindMessage(bundle: Bundle, artifact: Buffer | undefined, digest: string | undefined): void {
  if (bundle.content.$case !== 'messageSignature') return;
  const md = bundle.content.messageSignature.messageDigest;
  const recorded = md?.digest?.length ? `sha256:${md.digest.toString('hex')}` : undefined;
  if (!artifact && (!recorded || md.algorithm !== HashAlgorithm.SHA2_256)) {
    throw new CtError('USAGE', 'this message-signature bundle records no SHA-256 digest: verify it over the file, not a digest', { digest });
  }
  if (!artifact && digest === undefined) throw new CtError('USAGE', 'a message-signature bundle is verified over the artifact or its digest; none given', {});
  if (recorded && recorded !== digest) {
    throw new CtError('INVALID_SIGNATURE', `the bundle signs a different artifact: message digest ${recorded}, artifact ${digest}`, { expected: recorded, actual: digest });
  }
}

/** Digest-only verification of a message signature: the signature is checked over the digest. */
function overDigest(entity: SignedEntity, bundle: Bundle): SignedEntity {
  if (bundle.content.$case !== 'messageSignature') return entity;
  const { signature, messageDigest } = bundle.content.messageSignature;
  return withSignature(entity, { verifySignature: (key) => verifyP256Prehashed(messageDigest.digest, signature, key) });
}

/** RFC 3161 tokens, and log entries whose integrated time a signed entry timestamp covers. */
function countVerifiableTimestamps(entity: SignedEntity): number {
  return entity.timestamps.filter((t) => t.$case === 'timestamp-authority' || Boolean(t.tlogEntry.inclusionPromise)).length;
}
