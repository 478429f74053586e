/**
 * VCS attestation bundles (SPEC §4): the wire types, the builder used by `ct sign` and
 * `ct vcs create-bundle`, and the log entry that a bundle's attestation is recorded as.
 *
 * A log entry names no attestation. Its body is rebuilt from the attestation: attestationDigest =
 * sha256 of the canonical (JCS) DSSE envelope, subjectDigest = the image digest, predicateType
 * from the statement; timestamp = the entry's integratedTime. Entries are matched to attestations
 * by the leaf hash of that rebuilt entry.
 */
import { attestationDigestOf } from '../tlog/entry.js';
import type { DsseEnvelope } from './dsse.js';

export const VCS_BUNDLE_MEDIA_TYPE = 'application/vnd.verified-container.bundle+json';
export const VCS_BUNDLE_VERSION = '0.1.0';

export interface InclusionProof {
  logIndex: number;
  rootHash: string;
  treeSize: number;
  hashes: string[];
}

export interface VcsLogEntry {
  logId: string;
  logIndex: number;
  /** RFC 3339 (the reference schema's type); it is also the rebuilt entry's `timestamp`. */
  integratedTime: string;
  inclusionProof: InclusionProof;
  signedEntryTimestamp: string;
}

export interface VcsBundleMetadata {
  producer?: string;
  producerVersion?: string;
  createdAt?: string;
}

export interface VcsBundle {
  mediaType: typeof VCS_BUNDLE_MEDIA_TYPE;
  version: string;
  attestations: DsseEnvelope[];
  logEntries: VcsLogEntry[];
  metadata?: VcsBundleMetadata;
}

/** The transparency-log entry (SPEC §6) recording one attestation. */
export interface AttestationLogEntry {
  version: 1;
  timestamp: string;
  entryType: 'attestation';
  body: { attestationDigest: string; subjectDigest: string; predicateType: string };
}

/** sha256 of the canonical DSSE envelope: the attestation's identity everywhere (logs, revocation, evidence). */
export function attestationDigest(env: DsseEnvelope): string {
  return attestationDigestOf(env);
}

export function attestationLogEntry(attDigest: string, imageDigest: string, predicateType: string, timestamp: string): AttestationLogEntry {
  return {
    version: 1,
    timestamp,
    entryType: 'attestation',
    body: { attestationDigest: attDigest, subjectDigest: imageDigest, predicateType },
  };
}

/**
 * JCS bytes of an attestation's log entry, written directly: the keys are fixed and sort as
 * written here, and JCS serialises strings exactly as JSON.stringify does (RFC 8785 §3.2.2.2).
 * The verifier rebuilds one per attestation; test/vcs/parse.test.ts checks it equals
 * canonicalBytes(attestationLogEntry(…)).
 */
export function attestationEntryBytes(attDigest: string, imageDigest: string, predicateType: string, timestamp: string): Buffer {
  const s = JSON.stringify;
  return Buffer.from(
    `{"body":{"attestationDigest":${s(attDigest)},"predicateType":${s(predicateType)},"subjectDigest":${s(imageDigest)}},"entryType":"attestation","timestamp":${s(timestamp)},"version":1}`,
    'utf8',
  );
}

export function buildVcsBundle(attestations: DsseEnvelope[], logEntries: VcsLogEntry[], metadata?: VcsBundleMetadata): VcsBundle {
  const b: VcsBundle = { mediaType: VCS_BUNDLE_MEDIA_TYPE, version: VCS_BUNDLE_VERSION, attestations, logEntries };
  if (metadata) b.metadata = metadata;
  return b;
}

/**
 * Bytes of a bundle as `ct` writes it: compact JSON, no final newline. Readers accept any JSON,
 * but what ct writes has no insignificant byte (whitespace) that could change unnoticed.
 */
export function vcsBundleBytes(b: VcsBundle): Buffer {
  return Buffer.from(JSON.stringify(b), 'utf8');
}
