/**
 * The attestation verifiers a .ctp is checked with, in order. Each claims the paths under
 * `attestations/` it reads (VCS: `bundle.json`; Sigstore: `*.sigstore.json`). A new kind of
 * attestation is one more entry here.
 */
import type { AttestationVerifier } from '../report.js';
import { vcsVerifier } from '../vcs/verifier.js';
import { SigstoreAttestationVerifier, type SigstoreAttestationVerifierOptions } from '../sigstore/attestation-verifier.js';

export function defaultVerifiers(sigstore: SigstoreAttestationVerifierOptions = {}): AttestationVerifier[] {
  return [vcsVerifier, new SigstoreAttestationVerifier(sigstore)];
}
