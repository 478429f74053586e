/**
 * The attestation verifiers a .ctp is checked with, in order. Each claims the paths under
 * `attestations/` it reads (VCS: `bundle.json`; Sigstore: `*.sigstore.json`). A new kind of
 * attestation is one more entry here.
 */
import type { AttestationVerifier, VerifierResult, VerifyContext } from '../report.js';
import { vcsVerifier } from '../vcs/verifier.js';
import type { SigstoreAttestationVerifierOptions, SigstoreInputRunner } from '../sigstore/attestation-verifier.js';
import { isSigstoreAttestationPath } from '../sigstore/paths.js';

/**
 * The Sigstore verifier, loaded when a bundle first has a Sigstore attestation: @sigstore/* cost
 * about 0.3 s of CPU to load, paid by every `ct verify` (and every verification thread) otherwise.
 * It claims the same paths and, given no such file, answers what the verifier answers (nothing).
 */
class LazySigstoreVerifier implements AttestationVerifier {
  readonly name = 'sigstore';
  private inner?: Promise<AttestationVerifier>;
  constructor(private readonly opts: SigstoreAttestationVerifierOptions, private readonly runner?: SigstoreInputRunner) {}

  accepts(path: string): boolean {
    return isSigstoreAttestationPath(path);
  }

  async verify(ctx: VerifyContext): Promise<VerifierResult> {
    if (!ctx.inputs.some((i) => this.accepts(i.name))) return { verifier: this.name, imageDigest: ctx.imageDigest, attestations: [], findings: [], warnings: [], logEntriesVerified: 0 };
    this.inner ??= import('../sigstore/attestation-verifier.js').then((m) => new m.SigstoreAttestationVerifier(this.opts, this.runner));
    return (await this.inner).verify(ctx);
  }
}

/** The Sigstore verifier; `runner` checks each file elsewhere (a verification thread, sigstore/pool.ts). */
export function sigstoreVerifier(opts: SigstoreAttestationVerifierOptions = {}, runner?: SigstoreInputRunner): AttestationVerifier {
  return new LazySigstoreVerifier(opts, runner);
}

export function defaultVerifiers(sigstore: SigstoreAttestationVerifierOptions = {}, runner?: SigstoreInputRunner): AttestationVerifier[] {
  return [vcsVerifier, sigstoreVerifier(sigstore, runner)];
}
