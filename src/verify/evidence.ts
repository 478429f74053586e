/**
 * What the verifiers hand to the policy engine: only facts that were proven. Each verifier
 * (VCS, Sigstore) adds entries; nothing in here comes from a claim the bundle makes about itself
 * unless a verified signature covers it.
 */
export type Mode = 'strict' | 'permissive' | 'audit';

export interface VerifiedSigner {
  kind: 'key' | 'keyless';
  /** Key id (`sha256:…`) for key signers. */
  keyId?: string;
  /** Trust-store roles of the key. */
  roles?: string[];
  /** Keyless: OIDC issuer and certificate subject (SAN), plus decoded Fulcio extensions. */
  issuer?: string;
  subject?: string;
  claims?: Record<string, string>;
}

export interface VerifiedLogEntry {
  logId: string;
  operator: string;
  logIndex: number;
  integratedTime: number;
  kind: 'vcs' | 'rekor';
}

export interface VerifiedAttestation {
  /** sha256 of the canonical DSSE envelope (VCS) or of the bundle's envelope (Sigstore). */
  digest: string;
  source: 'vcs' | 'sigstore';
  predicateType: string;
  predicate: unknown;
  subjects: { name: string; digest: Record<string, string> }[];
  signers: VerifiedSigner[];
  logEntries: VerifiedLogEntry[];
  /** Distinct log operators whose proofs verified for this attestation. */
  logOperators: string[];
  legacyPae?: boolean;
}

export interface Finding {
  code: string;
  message: string;
  /** Integrity failures reject in every mode (SPEC §4). */
  integrity: boolean;
  details?: Record<string, unknown>;
}

export interface Evidence {
  imageDigest: string;
  bundleDigest?: string;
  attestations: VerifiedAttestation[];
  /** Files of the .ctp outside oci-layout/ and attestations/, name → sha256 digest, all covered. */
  coveredFiles?: Record<string, string>;
  /** The registry reference the server itself fetched, when it did. */
  fetchedReference?: string;
}

/** The record kept for every verification decision (SPEC §4, VCS protocol §7.8). */
export interface DecisionRecord {
  time: string;
  imageDigest: string | null;
  bundleDigest: string | null;
  decision: 'ALLOW' | 'REJECT';
  mode: Mode;
  code: string | null;
  message?: string;
  warnings: string[];
  trustStoreVersion?: number;
  policyDigest?: string;
}
