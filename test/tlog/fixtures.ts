import type { LogEntry } from '../../src/tlog/index.js';

/** Digest number n, and a valid attestation entry for it stamped now (within any log's skew). */
export const D = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;
export const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
export const entryN = (n: number): LogEntry => ({
  version: 1,
  timestamp: now(),
  entryType: 'attestation',
  body: { attestationDigest: D(n), subjectDigest: D(n + 1_000_000), predicateType: 'https://slsa.dev/provenance/v1' },
});

