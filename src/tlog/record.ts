import type { KeyObject } from 'node:crypto';
import { publicKeyFrom } from '../trust/keyid.js';
import type { TrustedLog } from '../trust/types.js';
import { leafHash } from './hashes.js';
import { verifySet } from './set.js';
import { rootFromInclusion } from './verify-proofs.js';

/** Inclusion proof as VCS bundles and the log API carry it: hashes as lower-case hex. */
export interface InclusionProofJson {
  logIndex: number;
  rootHash: string;
  treeSize: number;
  hashes: string[];
}

/** A log entry record as found in a VCS bundle's `logEntries` (SPEC §4). */
export interface LogEntryRecord {
  logId: string;
  logIndex: number;
  integratedTime: string;
  inclusionProof: InclusionProofJson;
  signedEntryTimestamp: string;
}

export type RecordCheck = { ok: true; leafHash: Buffer } | { ok: false; code: 'LOG_PROOF_INVALID'; message: string };

const HEX32 = /^[0-9a-f]{64}$/;

export function toHex(b: Buffer): string {
  return b.toString('hex');
}

/**
 * Decodes a proof hash. The VCS schema allows `<hex>` or `sha256:<hex>`; we accept both, lower
 * case only (the MVP writes bare lower-case hex, and so do we).
 */
export function hashFromHex(s: unknown): Buffer | null {
  if (typeof s !== 'string') return null;
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  return HEX32.test(hex) ? Buffer.from(hex, 'hex') : null;
}

function bad(message: string): RecordCheck {
  return { ok: false, code: 'LOG_PROOF_INVALID', message };
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Checks one bundle log record against the canonical bytes of the entry it claims to log and
 * the trust-store entry of its log: the SET must be the log key's signature over the entry, and
 * the inclusion proof must lead from the entry's leaf hash to the record's root. Both are
 * checked; either failing is LOG_PROOF_INVALID. Never throws.
 */
export function verifyLogEntryRecord(record: unknown, entryBytes: Uint8Array, log: Pick<TrustedLog, 'operator' | 'publicKey'> | { operator: string; publicKey: KeyObject }): RecordCheck {
  const r = record as Partial<LogEntryRecord> | null;
  if (typeof r !== 'object' || r === null) return bad('log entry record is not an object');
  if (!isIndex(r.logIndex)) return bad('logIndex must be a non-negative integer');
  const p = r.inclusionProof;
  if (typeof p !== 'object' || p === null) return bad('inclusionProof is missing');
  if (!isIndex(p.logIndex) || p.logIndex !== r.logIndex) return bad('inclusionProof.logIndex differs from logIndex');
  if (!isIndex(p.treeSize) || p.treeSize <= p.logIndex) return bad('inclusionProof.treeSize must exceed logIndex');
  const root = hashFromHex(p.rootHash);
  if (!root) return bad('inclusionProof.rootHash is not a 32-byte hex hash');
  if (!Array.isArray(p.hashes) || p.hashes.length > 64) return bad('inclusionProof.hashes must be an array of at most 64 hashes');
  const hashes = p.hashes.map(hashFromHex);
  if (hashes.some((h) => h === null)) return bad('inclusionProof.hashes holds a value that is not a 32-byte hex hash');

  let key: KeyObject;
  try {
    key = typeof log.publicKey === 'string' ? publicKeyFrom(log.publicKey, `log ${r.logId ?? ''} publicKey`) : log.publicKey;
  } catch (e) {
    return bad(`trust-store key of log ${String(r.logId)} is unusable: ${(e as Error).message}`);
  }
  if (typeof r.signedEntryTimestamp !== 'string' || !verifySet(entryBytes, r.signedEntryTimestamp, key)) {
    return bad(`signedEntryTimestamp of log ${String(r.logId)} index ${r.logIndex} does not verify with the log key`);
  }
  const leaf = leafHash(entryBytes);
  const computed = rootFromInclusion(leaf, p.logIndex, p.treeSize, hashes as Buffer[]);
  if (!computed) return bad(`inclusion proof for index ${p.logIndex} in a tree of ${p.treeSize} has the wrong number of hashes`);
  if (!computed.equals(root)) return bad(`inclusion proof for index ${p.logIndex} does not lead to root ${p.rootHash}`);
  return { ok: true, leafHash: leaf };
}

/** Shape check of a record as a log returns it (used by the client before handing it on). */
export function isLogEntryRecord(v: unknown): v is LogEntryRecord {
  const r = v as LogEntryRecord;
  return (
    typeof r === 'object' && r !== null && typeof r.logId === 'string' && isIndex(r.logIndex) && typeof r.integratedTime === 'string' &&
    typeof r.signedEntryTimestamp === 'string' && typeof r.inclusionProof === 'object' && r.inclusionProof !== null &&
    isIndex(r.inclusionProof.logIndex) && isIndex(r.inclusionProof.treeSize) && typeof r.inclusionProof.rootHash === 'string' &&
    Array.isArray(r.inclusionProof.hashes)
  );
}
