/**
 * Log-entry stage. Bundles carry no entry body, so each entry is matched to an attestation by
 * rebuilding the entry an attestation would have been logged as (SPEC §4) and checking the
 * inclusion proof from its leaf hash; the SET is then checked over the same bytes with the log's
 * key from the trust store. Entries from logs the trust store does not list are skipped (they
 * never count towards the quorum); an entry of a trusted log that proves none of the bundle's
 * attestations, or whose SET does not verify, is LOG_PROOF_INVALID.
 */
import type { KeyObject } from 'node:crypto';
import { CtError } from '../../core/errors.js';
import { ownEntry } from '../../trust/store.js';
import { leafHashLatin1 } from '../../tlog/hashes.js';
import { ProofNodes, verifyInclusion } from '../../tlog/verify-proofs.js';
import { verifySetBytes } from '../../tlog/set.js';
import { attestationEntryBytes } from '../../attest/vcs-bundle.js';
import type { TrustStore } from '../../trust/types.js';
import type { VerifiedLogEntry } from '../evidence.js';
import type { ParsedAttestation, ParsedLogEntry } from './parse.js';
import { cachedPublicKey } from './keys.js';

/** Entries matched to attestations by their inclusion proofs; no signature checked yet. */
/**
 * The trust store's entry for a log id, which names the operator its entries count under for the
 * log quorum (distinct operators: two logs of one operator count once); undefined when the store
 * does not list the log, whose entries then count for nothing. ct sign's warning counts the same way.
 */
export function trustedLog(store: TrustStore, logId: string): { operator: string; publicKey: string } | undefined {
  return ownEntry(store.logs, logId);
}

export interface LogPlan {
  matched: { pe: ParsedLogEntry; ai: number; logKey: KeyObject; operator: string; bytes: Buffer }[];
  warnings: string[];
  /** The first proof failure, thrown by the caller after the signature stage (SPEC §4 order). */
  failure?: CtError;
}

export interface LogStageResult {
  /** Per attestation (bundle order): the entries whose proofs verified, and their operators. */
  entries: VerifiedLogEntry[][];
  operators: string[][];
  warnings: string[];
  verified: number;
}

/**
 * Matches every entry of a trusted log to the attestation its inclusion proof proves. Pure
 * hashing; the caller runs it before the signature stage (so that all signature checks then run
 * back to back, which is measurably cheaper) but reports its failure only after that stage.
 */
export function matchLogEntries(atts: ParsedAttestation[], entries: ParsedLogEntry[], imageDigest: string, store: TrustStore): LogPlan {
  const plan: LogPlan = { matched: [], warnings: [] };
  try {
    matchInto(plan, atts, entries, imageDigest, store);
  } catch (e) {
    if (!(e instanceof CtError)) throw e;
    plan.failure = e;
  }
  return plan;
}

function matchInto(plan: LogPlan, atts: ParsedAttestation[], entries: ParsedLogEntry[], imageDigest: string, store: TrustStore): void {
  // Entry bytes depend on (attestation, integratedTime); entries of one signing run share the time.
  const bytesCache = new Map<string, { bytes: Buffer; leaf: string }>();
  const candidate = (ai: number, time: string): { bytes: Buffer; leaf: string } => {
    const k = `${ai}\u0000${time}`;
    let c = bytesCache.get(k);
    if (!c) {
      const a = atts[ai];
      const bytes = attestationEntryBytes(a.digest, imageDigest, a.statement.predicateType, time);
      c = { bytes, leaf: leafHashLatin1(bytes) };
      bytesCache.set(k, c);
    }
    return c;
  };
  const seenPerLog = new Map<string, number>();
  const nodes = new ProofNodes();
  for (const pe of entries) {
    const e = pe.entry;
    const where = `$.logEntries[${pe.index}]`;
    const log = trustedLog(store, e.logId);
    if (!log) {
      plan.warnings.push(`${where}: log ${e.logId} is not in the trust store; entry not counted`);
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
      if (verifyInclusion(c.leaf, e.logIndex, e.inclusionProof.treeSize, pe.hashes, pe.rootHash, nodes)) match = ai;
    }
    if (match < 0) {
      throw new CtError('LOG_PROOF_INVALID', `${where}: the inclusion proof of log ${e.logId} at index ${e.logIndex} proves none of the bundle's attestations`, {
        where,
        logId: e.logId,
        logIndex: e.logIndex,
      });
    }
    plan.matched.push({ pe, ai: match, logKey: cachedPublicKey(log.publicKey, `trust store log ${e.logId}`), operator: log.operator, bytes: candidate(match, e.integratedTime).bytes });
  }
}

/** Checks the SET of every matched entry (LOG_PROOF_INVALID) and groups entries per attestation. */
export function checkLogSignatures(atts: ParsedAttestation[], plan: LogPlan): LogStageResult {
  const out: LogStageResult = { entries: atts.map(() => []), operators: atts.map(() => []), warnings: [...plan.warnings], verified: 0 };
  for (const { pe, ai, logKey, operator, bytes } of plan.matched) {
    const e = pe.entry;
    if (!verifySetBytes(bytes, pe.set, logKey)) {
      throw new CtError('LOG_PROOF_INVALID', `$.logEntries[${pe.index}]: signedEntryTimestamp does not verify with the key of log ${e.logId}`, {
        where: `$.logEntries[${pe.index}]`,
        logId: e.logId,
        logIndex: e.logIndex,
      });
    }
    out.entries[ai].push({ logId: e.logId, operator, logIndex: e.logIndex, integratedTime: pe.integratedSeconds, kind: 'vcs' });
    if (!out.operators[ai].includes(operator)) out.operators[ai].push(operator);
    out.verified++;
  }
  return out;
}

/** Both steps, for callers that need no interleaving with the signature stage. */
export function checkLogEntries(atts: ParsedAttestation[], entries: ParsedLogEntry[], imageDigest: string, store: TrustStore): LogStageResult {
  const plan = matchLogEntries(atts, entries, imageDigest, store);
  if (plan.failure) throw plan.failure;
  return checkLogSignatures(atts, plan);
}
