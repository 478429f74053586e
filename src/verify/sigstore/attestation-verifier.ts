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

export class SigstoreAttestationVerifier implements AttestationVerifier {
  readonly name = 'sigstore';
  constructor(private readonly opts: SigstoreAttestationVerifierOptions = {}) {}

  accepts(path: string): boolean {
    return isSigstoreAttestationPath(path);
  }

  async verify(ctx: VerifyContext): Promise<VerifierResult> {
    const result: VerifierResult = { verifier: this.name, imageDigest: ctx.imageDigest, attestations: [], findings: [], warnings: [], logEntriesVerified: 0 };
    const inputs = ctx.inputs.filter((i) => this.accepts(i.name));
    if (inputs.length === 0) return result;
    if (!this.opts.policy) {
      // Nothing is asked of them, yet each must be what the format says (no junk rides along).
      if (ctx.imageDigest) for (const input of inputs) checkedAs(input.name, () => checkUnjudgedAttestation(input.data, ctx.imageDigest as string));
      result.warnings.push(`${inputs.length} Sigstore attestation(s) ignored: no keyless identity given (--certificate-identity / --certificate-oidc-issuer)`);
      return result;
    }
    if (!ctx.imageDigest) throw new CtError('USAGE', 'Sigstore attestations are verified against the image digest; none known', {});
    const verifier = verifierFor(rootFrom(ctx, this.opts.trustedRoot), this.opts.thresholds);
    for (const input of inputs) {
      try {
        const v = verifier.verify(input.data, { policy: this.opts.policy, digest: ctx.imageDigest });
        if (!v.attestation) throw new CtError('MALFORMED_BUNDLE', `${input.name}: a message signature, not an in-toto attestation`, { path: input.name });
        const att: VerifiedAttestation = v.attestation;
        result.attestations.push(att);
        result.logEntriesVerified += v.logEntries.length;
      } catch (e) {
        if (!(e instanceof CtError)) throw e;
        const where = { ...e.details, path: input.name };
        if (RELAXABLE.has(e.code)) {
          const f: Finding = { code: e.code, message: `${input.name}: ${e.message}`, integrity: false, details: where };
          result.findings.push(f);
          continue;
        }
        throw new CtError(e.code, `${input.name}: ${e.message}`, where, { cause: e });
      }
    }
    return result;
  }
}

/** Runs a check of one input; a CtError is re-thrown with the input's name. */
function checkedAs(name: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (!(e instanceof CtError)) throw e;
    throw new CtError(e.code, `${name}: ${e.message}`, { ...e.details, path: name }, { cause: e });
  }
}
