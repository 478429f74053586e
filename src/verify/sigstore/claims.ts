/**
 * The names of Fulcio's certificate claims, as the verifier reports them (VerifiedSigner.claims)
 * and as policies and `--certificate-*` options name them. Apart from identity.ts (which loads
 * @sigstore/core) so that policy compilation can resolve names without loading Sigstore.
 */
import { CtError } from '../../core/errors.js';

const OID = (n: number) => `1.3.6.1.4.1.57264.1.${n}`;

/** Fulcio's names for the DER-encoded extensions (cosign's --certificate-github-* flags map here). */
export const CLAIM_OIDS = {
  issuer: OID(8),
  buildSignerUri: OID(9),
  buildSignerDigest: OID(10),
  runnerEnvironment: OID(11),
  sourceRepositoryUri: OID(12),
  sourceRepositoryDigest: OID(13),
  sourceRepositoryRef: OID(14),
  sourceRepositoryIdentifier: OID(15),
  sourceRepositoryOwnerUri: OID(16),
  sourceRepositoryOwnerIdentifier: OID(17),
  buildConfigUri: OID(18),
  buildConfigDigest: OID(19),
  buildTrigger: OID(20),
  runInvocationUri: OID(21),
  sourceRepositoryVisibilityAtSigning: OID(22),
} as const;

/** The deprecated raw-bytes extensions (GitHub only), under their own names. */
export const LEGACY_CLAIM_OIDS = {
  legacyIssuer: OID(1),
  githubWorkflowTrigger: OID(2),
  githubWorkflowSha: OID(3),
  githubWorkflowName: OID(4),
  githubWorkflowRepository: OID(5),
  githubWorkflowRef: OID(6),
} as const;

/** Short names users write in policies and on the command line. */
export const CLAIM_ALIASES: Record<string, string> = {
  repository: 'sourceRepositoryUri',
  repositoryId: 'sourceRepositoryIdentifier',
  ownerId: 'sourceRepositoryOwnerIdentifier',
  owner: 'sourceRepositoryOwnerUri',
  ref: 'sourceRepositoryRef',
  sha: 'sourceRepositoryDigest',
  workflow: 'buildConfigUri',
  signerWorkflow: 'buildSignerUri',
  trigger: 'buildTrigger',
  runnerEnvironment: 'runnerEnvironment',
};

export type ClaimName = keyof typeof CLAIM_OIDS | keyof typeof LEGACY_CLAIM_OIDS;

/** Canonical names by their lower-case spelling: Fulcio's docs write `Source Repository URI`, users `sourceRepositoryUri`. */
const BY_LOWER = new Map<string, string>([...Object.keys(CLAIM_OIDS), ...Object.keys(LEGACY_CLAIM_OIDS)].map((n) => [n.toLowerCase(), n]));

/** The canonical claim name for a name, alias or other capitalisation of one; undefined for no claim. */
export function canonicalClaimName(name: string): string | undefined {
  return (Object.hasOwn(CLAIM_ALIASES, name) ? CLAIM_ALIASES[name] : undefined) ?? BY_LOWER.get(name.toLowerCase());
}

/** canonicalClaimName, or POLICY_INVALID. */
export function resolveClaimName(name: string): string {
  const n = canonicalClaimName(name);
  if (n === undefined) throw new CtError('POLICY_INVALID', `unknown certificate claim ${JSON.stringify(name.slice(0, 100))}`, { claim: name.slice(0, 100) });
  return n;
}
