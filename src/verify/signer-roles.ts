/**
 * Which trust-store roles may sign which attestations (#13 finding 4). A key is trusted FOR a role;
 * an attestation counts only when one of its key signers holds a role that may sign its predicate
 * type. Build attestations (SLSA provenance, SBOMs) are the builders'; other predicate types (review,
 * release, scan results) may also come from releasers and reviewers. Trust-store updaters sign
 * trust-store updates, never attestations. A policy's explicit `allowedSigners` replaces this
 * rule, and `ct verify --any-signer-role` (Requirements.signerRoles = 'any') widens it on purpose.
 */
import { PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT } from '../attest/statement.js';
import type { VerifiedAttestation, VerifiedSigner } from './evidence.js';

const PROVENANCE_PREDICATES: ReadonlySet<string> = new Set<string>([
  PREDICATE_SLSA_PROVENANCE_V1,
  'https://slsa.dev/provenance/v0.2',
  'https://slsa.dev/provenance/v0.1',
  'https://in-toto.io/attestation/link/v0.3',
]);

/** Predicates that say how the subject was built (any SLSA provenance version, in-toto links): their signer is its builder. */
export function isProvenancePredicate(predicateType: string): boolean {
  return PROVENANCE_PREDICATES.has(predicateType) || predicateType.startsWith('https://slsa.dev/provenance/');
}

const BUILD_PREDICATES = new Set<string>([
  ...PROVENANCE_PREDICATES,
  PREDICATE_SPDX_DOCUMENT,
  'https://spdx.dev/Document/v2.3',
  'https://cyclonedx.org/bom',
]);

const BUILDERS: readonly string[] = ['builders'];
const ATTESTERS: readonly string[] = ['builders', 'releasers', 'reviewers'];

/** The roles whose keys may sign an attestation of this predicate type. */
export function rolesThatMaySign(predicateType: string): readonly string[] {
  return BUILD_PREDICATES.has(predicateType) || isProvenancePredicate(predicateType) ? BUILDERS : ATTESTERS;
}

/**
 * True when a signer may sign this attestation: a trust-store key holding a permitted role. Keyless
 * signers are judged by their identity policy, and a key given explicitly on the command line (no
 * trust-store roles) was chosen by the caller.
 */
export function signerMaySign(s: VerifiedSigner, a: VerifiedAttestation): boolean {
  if (s.kind !== 'key' || s.roles === undefined) return true;
  const may = rolesThatMaySign(a.predicateType);
  return (s.roles ?? []).some((r) => may.includes(r));
}
