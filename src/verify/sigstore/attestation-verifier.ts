/**
 * The Sigstore verifier as one of the report's pluggable AttestationVerifiers (src/verify/report.ts):
 * it claims `attestations/*.sigstore.json`, verifies each against the image digest, and hands the
 * combiner VerifiedAttestations whose Rekor entries count towards the log quorum with the VCS logs.
 */
import { CtError } from '../../core/errors.js';
import type { AttestationVerifier, VerifierResult, VerifyContext } from '../report.js';
import type { Finding, VerifiedAttestation } from '../evidence.js';
import { SigstoreBundleVerifier, type SigstoreThresholds } from './verifier.js';
import { publicGoodTrustedRoot, trustedRootFromJSON, type LoadedTrustedRoot } from './trusted-root.js';
import type { IdentityPolicy } from './identity.js';
import { checkUnjudgedAttestation } from './shape.js';
import { isSigstoreAttestationPath } from './paths.js';

export { SIGSTORE_BUNDLE_SUFFIX } from './paths.js';

/** Requirement-level outcomes a mode may relax; every other code is an integrity/trust failure. */
const RELAXABLE = new Set(['INSUFFICIENT_LOG_COVERAGE', 'THRESHOLD_NOT_MET']);

export interface SigstoreAttestationVerifierOptions {
  /** Identities whose signatures count; none → Sigstore attestations are ignored, with a warning. */
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
 * One Sigstore attestation file, checked: with an identity policy, verified against the trusted
 * root (the attestation and its Rekor entry count); without one, only checked to be what the format
 * says (nothing counts: null). Synchronous and CPU-bound: what a verification thread runs
 * (pool.ts). Throws CtError without the file's name (the caller adds it).
 */
export type SigstoreInputOutcome = { attestation: VerifiedAttestation; logEntries: number } | null;

export function checkSigstoreInput(data: Buffer, imageDigest: string, policy: IdentityPolicy | undefined, root: LoadedTrustedRoot | undefined, thresholds?: SigstoreThresholds): SigstoreInputOutcome {
  if (!policy || !root) {
    checkUnjudgedAttestation(data, imageDigest);
    return null;
  }
  const v = verifierFor(root, thresholds).verify(data, { policy, digest: imageDigest });
  if (!v.attestation) throw new CtError('MALFORMED_BUNDLE', 'a message signature, not an in-toto attestation', {});
  return { attestation: v.attestation, logEntries: v.logEntries.length };
}

/** Where each input is checked: in this thread (default) or on a verification thread (pool.ts). */
export interface SigstoreInput {
  data: Buffer;
  imageDigest: string;
  /** None: the input is only checked to be what the format says. */
  policy?: IdentityPolicy;
  /** Given with a policy. */
  root?: LoadedTrustedRoot;
  thresholds?: SigstoreThresholds;
}
export type SigstoreInputRunner = (input: SigstoreInput) => Promise<SigstoreInputOutcome>;

const inThisThread: SigstoreInputRunner = async (i) => checkSigstoreInput(i.data, i.imageDigest, i.policy, i.root, i.thresholds);

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
    const policy = this.opts.policy;
    if (policy && !ctx.imageDigest) throw new CtError('USAGE', 'Sigstore attestations are verified against the image digest; none known', {});
    const imageDigest = ctx.imageDigest;
    const root = policy ? rootFrom(ctx, this.opts.trustedRoot) : undefined;
    // Every input is started at once (a pool verifies them side by side); outcomes are then taken
    // in file order, so the first failure reported is the one a one-by-one check would report.
    const outcomes = imageDigest
      ? await Promise.allSettled(inputs.map((input) => this.runner({ data: input.data, imageDigest, policy, root, thresholds: this.opts.thresholds })))
      : [];
    outcomes.forEach((o, k) => {
      const name = inputs[k].name;
      if (o.status === 'fulfilled') {
        if (o.value) {
          result.attestations.push(o.value.attestation);
          result.logEntriesVerified += o.value.logEntries;
        }
        return;
      }
      const e = o.reason as unknown;
      if (!(e instanceof CtError)) throw e;
      const where = { ...e.details, path: name };
      if (policy && RELAXABLE.has(e.code)) {
        const f: Finding = { code: e.code, message: `${name}: ${e.message}`, integrity: false, details: where };
        result.findings.push(f);
        return;
      }
      throw new CtError(e.code, `${name}: ${e.message}`, where, { cause: e });
    });
    // Nothing is asked of them without an identity, yet each must be what the format says (no junk rides along).
    if (!policy) result.warnings.push(`${inputs.length} Sigstore attestation(s) ignored: no keyless identity given (--certificate-identity / --certificate-oidc-issuer)`);
    return result;
  }
}
