/**
 * The Sigstore verifier as one of the report's pluggable AttestationVerifiers (src/verify/report.ts):
 * it claims `attestations/*.sigstore.json`, verifies each against the image digest, and hands the
 * combiner VerifiedAttestations whose Rekor entries count towards the log quorum with the VCS logs.
 */
import { CtError } from '../../core/errors.js';
import type { AttestationVerifier, KeylessTrust, VerifierResult, VerifyContext } from '../report.js';
import type { Finding, VerifiedAttestation } from '../evidence.js';
import { SigstoreBundleVerifier, type SigstoreThresholds } from './verifier.js';
import { publicGoodTrustedRoot, trustedRootFromJSON, type LoadedTrustedRoot } from './trusted-root.js';
import type { IdentityPolicy } from './identity.js';
import { checkUnjudgedAttestation } from './shape.js';
import { isSigstoreAttestationPath } from './paths.js';

export { SIGSTORE_BUNDLE_SUFFIX } from './paths.js';

/** Sigstore attestation files one bundle may hold. */
export const MAX_SIGSTORE_FILES = 64;

/** Requirement-level outcomes a mode may relax; every other code is an integrity/trust failure. */
const RELAXABLE = new Set(['INSUFFICIENT_LOG_COVERAGE', 'THRESHOLD_NOT_MET']);

export interface SigstoreAttestationVerifierOptions {
  /**
   * The identity whose signatures count (`--certificate-identity` …). None: the identities the
   * trust material's policies name (TrustMaterial.keyless); neither → Sigstore attestations are
   * ignored, with a warning.
   */
  policy?: IdentityPolicy;
  /** Used when the context carries no trusted root; default the public-good root (offline). */
  trustedRoot?: LoadedTrustedRoot;
  thresholds?: SigstoreThresholds;
}

// Verifiers (trust material + @sigstore/verify Verifier + result cache) reused across calls.
const verifiers = new Map<string, SigstoreBundleVerifier>();

export function verifierFor(root: LoadedTrustedRoot, thresholds?: SigstoreThresholds): SigstoreBundleVerifier {
  const key = `${root.digest}|${JSON.stringify(thresholds ?? {})}`;
  let v = verifiers.get(key);
  if (!v) {
    v = new SigstoreBundleVerifier({ trustedRoot: root, thresholds });
    if (verifiers.size > 16) verifiers.clear();
    verifiers.set(key, v);
  }
  return v;
}

function rootFrom(ctx: VerifyContext, fallback?: LoadedTrustedRoot): LoadedTrustedRoot {
  const r = ctx.trust?.trustedRoot as LoadedTrustedRoot | Record<string, unknown> | undefined;
  if (r && typeof r === 'object' && 'root' in r && 'digest' in r) return r as LoadedTrustedRoot;
  if (r && typeof r === 'object') return trustedRootFromJSON(r, 'trust.trustedRoot');
  return fallback ?? publicGoodTrustedRoot();
}

/**
 * One Sigstore attestation file, checked: with an identity (a policy, or `any` when the caller
 * judges the signer's identity itself), verified against the trusted root (the attestation and its
 * Rekor entry count); without one, only checked to be what the format says (nothing counts: null).
 * Synchronous and CPU-bound: what a verification thread runs (pool.ts). Throws CtError without the
 * file's name (the caller adds it).
 */
export type SigstoreInputOutcome = { attestation: VerifiedAttestation; logEntries: number } | null;

/** Where each input is checked: in this thread (default) or on a verification thread (pool.ts). */
export interface SigstoreInput {
  data: Buffer;
  imageDigest: string;
  /**
   * Whose signatures verify: a policy; `any`, for a caller that then judges the certificate's
   * identity itself (KeylessTrust); none, and the input is only checked to be what the format says.
   */
  identity?: IdentityPolicy | 'any';
  /** Given with an identity. */
  root?: LoadedTrustedRoot;
  thresholds?: SigstoreThresholds;
}
export type SigstoreInputRunner = (input: SigstoreInput) => Promise<SigstoreInputOutcome>;

export function checkSigstoreInput(i: SigstoreInput): SigstoreInputOutcome {
  if (!i.identity || !i.root) {
    checkUnjudgedAttestation(i.data, i.imageDigest);
    return null;
  }
  const req = i.identity === 'any' ? { anyIdentity: true } : { policy: i.identity };
  const v = verifierFor(i.root, i.thresholds).verify(i.data, { ...req, digest: i.imageDigest });
  if (!v.attestation) throw new CtError('MALFORMED_BUNDLE', 'a message signature, not an in-toto attestation', {});
  return { attestation: v.attestation, logEntries: v.logEntries.length };
}

const inThisThread: SigstoreInputRunner = async (i) => checkSigstoreInput(i);

/** IDENTITY_MISMATCH unless every keyless signer of the attestation (file `name`) is one the policies trust. */
function checkTrusted(keyless: KeylessTrust, a: VerifiedAttestation, name: string): void {
  for (const s of a.signers) {
    if (s.kind !== 'keyless' || keyless.accepts(s)) continue;
    const shown = keyless.labels.slice(0, 8).map((l) => JSON.stringify(l.slice(0, 200))).join(', ');
    throw new CtError('IDENTITY_MISMATCH',
      `${name}: signed by subject ${JSON.stringify(s.subject?.slice(0, 512) ?? null)} from issuer ${JSON.stringify(s.issuer?.slice(0, 512) ?? null)}, which no keyless signer of the policies accepts (${shown}${keyless.labels.length > 8 ? ', …' : ''})`,
      { path: name, actual: { subject: s.subject?.slice(0, 512) ?? null, issuer: s.issuer?.slice(0, 512) ?? null }, expected: keyless.labels.slice(0, 8) });
  }
}

export class SigstoreAttestationVerifier implements AttestationVerifier {
  readonly name = 'sigstore';
  constructor(private readonly opts: SigstoreAttestationVerifierOptions = {}, private readonly runner: SigstoreInputRunner = inThisThread) {}

  accepts(path: string): boolean {
    return isSigstoreAttestationPath(path);
  }

  async verify(ctx: VerifyContext): Promise<VerifierResult> {
    const result: VerifierResult = { verifier: this.name, imageDigest: ctx.imageDigest, attestations: [], findings: [], warnings: [], logEntriesVerified: 0 };
    const inputs = ctx.inputs.filter((i) => this.accepts(i.name));
    if (inputs.length === 0) return result;
    // Each file costs milliseconds of verification threads whoever signed it (the identity is judged
    // after): a bundle of thousands would hold the server's pool. The build action writes two.
    if (inputs.length > MAX_SIGSTORE_FILES) throw new CtError('MALFORMED_BUNDLE', `${inputs.length} Sigstore attestation files; at most ${MAX_SIGSTORE_FILES} are read`, { path: 'attestations/', count: inputs.length, limit: MAX_SIGSTORE_FILES });
    // An identity given to this verifier wins; else the identities the policies name, judged here.
    const keyless = this.opts.policy ? undefined : ctx.trust.keyless;
    const identity = this.opts.policy ?? (keyless ? 'any' : undefined);
    if (identity && !ctx.imageDigest) throw new CtError('USAGE', 'Sigstore attestations are verified against the image digest; none known', {});
    const imageDigest = ctx.imageDigest;
    const root = identity ? rootFrom(ctx, this.opts.trustedRoot) : undefined;
    // Every input is started at once (a pool verifies them side by side); outcomes are then taken
    // in file order, so the first failure reported is the one a one-by-one check would report.
    const outcomes = imageDigest
      ? await Promise.allSettled(inputs.map((input) => this.runner({ data: input.data, imageDigest, identity, root, thresholds: this.opts.thresholds })))
      : [];
    outcomes.forEach((o, k) => {
      const name = inputs[k].name;
      if (o.status === 'fulfilled') {
        if (o.value) {
          if (keyless) checkTrusted(keyless, o.value.attestation, name);
          result.attestations.push(o.value.attestation);
          result.logEntriesVerified += o.value.logEntries;
        }
        return;
      }
      const e = o.reason as unknown;
      if (!(e instanceof CtError)) throw e;
      const where = { ...e.details, path: name };
      if (identity && RELAXABLE.has(e.code)) {
        const f: Finding = { code: e.code, message: `${name}: ${e.message}`, integrity: false, details: where };
        result.findings.push(f);
        return;
      }
      throw new CtError(e.code, `${name}: ${e.message}`, where, { cause: e });
    });
    // Nothing is asked of them without an identity, yet each must be what the format says (no junk rides along).
    if (!identity) result.warnings.push(`${inputs.length} Sigstore attestation(s) ignored: no keyless identity given (--certificate-identity / --certificate-oidc-issuer, or a policy's keyless signer)`);
    return result;
  }
}
