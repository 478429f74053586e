/** Trust store as VCS defines it (SPEC §5). Parsed and validated by trust/store.ts. */
export type TrustRole = 'builders' | 'releasers' | 'reviewers' | 'trust-store-updaters' | (string & {});

export interface TrustedKey {
  id: string; // sha256:<hex of SPKI DER>
  algorithm: 'ed25519';
  publicKey: string; // base64 SPKI DER
  validFrom: string; // RFC 3339
  validUntil?: string;
  metadata?: Record<string, unknown>;
}

export interface ThresholdGroup {
  k: number;
  n: number;
  algorithm?: string;
  members: string[]; // key ids
}

export interface TrustedLog {
  operator: string;
  publicKey: string; // base64 SPKI DER (Ed25519)
  url?: string;
  algorithm?: string;
}

export interface TrustStore {
  version: number;
  id?: string;
  updated?: string;
  /** Keys by role (TrustRole names the usual ones; any role name is allowed). */
  keys: Record<string, TrustedKey[]>;
  thresholds?: Record<string, ThresholdGroup>;
  logs?: Record<string, TrustedLog>;
  /** Revoked key ids and attestation digests known to the store owner. */
  revoked?: { keys?: string[]; attestations?: string[] };
  /** Signatures over the JCS form of the store without this field (signed updates). */
  signatures?: { keyid: string; sig: string }[];
  /** Free-form notes about the store (the VCS samples carry one). */
  metadata?: Record<string, unknown>;
}
