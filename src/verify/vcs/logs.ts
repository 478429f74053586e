/**
 * Log-entry stage. Bundles carry no entry body, so each entry is matched to an attestation by
 * rebuilding the entry an attestation would have been logged as (SPEC §4) and checking the
 * inclusion proof from its leaf hash; the SET is then checked over the same bytes with the log's
 * key from the trust store. Entries from logs the trust store does not list are skipped (they
 * never count towards the quorum); an entry of a trusted log that proves none of the bundle's
 * attestations, or whose SET does not verify, is LOG_PROOF_INVALID.
 */
import { CtError } from '../../core/errors.js';
import { leafHash } from '../../tlog/hashes.js';
import { verifyInclusion } from '../../tlog/verify-proofs.js';
import { verifySet } from '../../tlog/set.js';
import { attestationEntryBytes } from '../../attest/vcs-bundle.js';
import type { TrustStore } from '../../trust/types.js';
import type { VerifiedLogEntry } from '../evidence.js';
import type { ParsedAttestation, ParsedLogEntry } from './parse.js';
import { cachedPublicKey } from './keys.js';

export interface LogStageResult {
  /** Per attestation (bundle order): the entries whose proofs verified, and their operators. */
  entries: VerifiedLogEntry[][];
  operators: string[][];
  warnings: string[];
  verified: number;
}

export function checkLogEntries(atts: ParsedAttestation[], entries: ParsedLogEntry[], imageDigest: string, store: TrustStore): LogStageResult {
  const out: LogStageResult = { entries: atts.map(() => []), operators: atts.map(() => []), warnings: [], verified: 0 };
  // Entry bytes depend on (attestation, integratedTime); entries of one signing run share the time.
  const bytesCache = new Map<string, { bytes: Buffer; leaf: Buffer }>();
  const candidate = (ai: number, time: string): { bytes: Buffer; leaf: Buffer } => {
    const k = `${ai}\u0000${time}`;
    let c = bytesCache.get(k);
    if (!c) {
      const a = atts[ai];
      const bytes = attestationEntryBytes(a.digest, imageDigest, a.statement.predicateType, time);
      c = { bytes, leaf: leafHash(bytes) };
      bytesCache.set(k, c);
    }
    return c;
  };
  const seenPerLog = new Map<string, number>();
  for (const pe of entries) {
    const e = pe.entry;
    const where = `$.logEntries[${pe.index}]`;
    const log = store.logs?.[e.logId];
    if (!log) {
      out.warnings.push(`${where}: log ${e.logId} is not in the trust store; entry not counted`);
      continue;
    }
    if (e.inclusionProof.logIndex !== e.logIndex) {
      throw new CtError('LOG_PROOF_INVALID', `${where}: inclusionProof.logIndex ${e.inclusionProof.logIndex} differs from logIndex ${e.logIndex}`, { where, logId: e.logId });
    }
    // Producers list each log's entries in attestation order, so the n-th entry of a log most
    // likely proves the n-th attestation: try that one first, then the rest (same result, fewer
    // Merkle paths computed).
    const seen = seenPerLog.get(e.logId) ?? 0;
    seenPerLog.set(e.logId, seen + 1);
    let match = -1;
    for (let k = 0; k < atts.length && match < 0; k++) {
      const ai = (seen + k) % atts.length;
      const c = candidate(ai, e.integratedTime);
      if (verifyInclusion(c.leaf, e.logIndex, e.inclusionProof.treeSize, pe.hashes, pe.rootHash)) match = ai;
    }
    if (match < 0) {
      throw new CtError('LOG_PROOF_INVALID', `${where}: the inclusion proof of log ${e.logId} at index ${e.logIndex} proves none of the bundle's attestations`, {
        where,
        logId: e.logId,
        logIndex: e.logIndex,
      });
    }
    const logKey = cachedPublicKey(log.publicKey, `trust store log ${e.logId}`);
    if (!verifySet(candidate(match, e.integratedTime).bytes, e.signedEntryTimestamp, logKey)) {
      throw new CtError('LOG_PROOF_INVALID', `${where}: signedEntryTimestamp does not verify with the key of log ${e.logId}`, { where, logId: e.logId, logIndex: e.logIndex });
    }
    out.entries[match].push({ logId: e.logId, operator: log.operator, logIndex: e.logIndex, integratedTime: pe.integratedSeconds, kind: 'vcs' });
    if (!out.operators[match].includes(log.operator)) out.operators[match].push(log.operator);
    out.verified++;
  }
  return out;
}
