/**
 * @sigstore/verify 3.1's verifyTLogInclusion (tlog/index.js) for the fast path (fast-path.ts), as a
 * boolean: true only where it would not throw. The signed entry timestamp's payload is written as
 * canonical JSON directly instead of through core's generic canonicalize (an object built, its keys
 * sorted, the ~6 KB base64 body scanned for escapes by JSON.stringify); the checkpoint and the
 * Merkle path are the library's own functions. False also covers "not decided here" (a missing
 * log id, any exception): the caller then leaves the bundle to the unmodified Verifier.
 * test/sigstore/fast-path.test.ts flips every byte of the SET, body, log id, log index and
 * integrated time, and compares with the Verifier.
 */
import { verify as cryptoVerify } from 'node:crypto';
import type { TrustMaterial } from '@sigstore/verify';
import { verifyCheckpoint } from '@sigstore/verify/dist/tlog/checkpoint.js';
import { verifyMerkleInclusion } from '@sigstore/verify/dist/tlog/merkle.js';

type TLogAuthority = TrustMaterial['tlogs'][number];
type CheckpointEntry = Parameters<typeof verifyCheckpoint>[0];

/** The parts of a bundle's log entry read here (protobuf-specs TransparencyLogEntry). */
export interface InclusionEntry {
  logIndex: string;
  logId?: { keyId: Buffer };
  integratedTime: string;
  inclusionPromise?: { signedEntryTimestamp: Buffer };
  inclusionProof?: unknown;
  canonicalizedBody: Buffer;
}

/**
 * tlog/set.js verifyTLogSET: one trusted log (same log id, key valid at the integrated time) whose
 * key verifies the SET over the canonical JSON of { body, integratedTime, logIndex, logID }. Keys
 * in JCS order (body, integratedTime, logID, logIndex); numbers as JSON.stringify writes them, as
 * canonicalize does; base64 and hex need no escaping.
 */
function setHolds(entry: InclusionEntry, promise: { signedEntryTimestamp: Buffer }, tlogs: TLogAuthority[]): boolean {
  if (!entry.logId) return false;
  const logID = entry.logId.keyId;
  const targetDate = new Date(Number(entry.integratedTime) * 1000);
  const valid = tlogs.filter((t) => (!logID || t.logID.equals(logID)) && t.validFor.start <= targetDate && targetDate <= t.validFor.end);
  if (valid.length === 0) return false;
  const text = `{"body":"${entry.canonicalizedBody.toString('base64')}","integratedTime":${JSON.stringify(Number(entry.integratedTime))},"logID":"${logID.toString('hex')}","logIndex":${JSON.stringify(Number(entry.logIndex))}}`;
  const data = Buffer.from(text, 'utf8');
  return valid.some((t) => {
    try {
      return cryptoVerify(undefined, data, t.publicKey, promise.signedEntryTimestamp);
    } catch {
      return false;
    }
  });
}

/** verifyTLogInclusion: the SET if there is a promise, the checkpoint and Merkle path if there is a proof, at least one of them. */
export function inclusionHolds(entry: InclusionEntry, tlogs: TLogAuthority[]): boolean {
  let verified = false;
  if (entry.inclusionPromise !== undefined) {
    if (!setHolds(entry, entry.inclusionPromise, tlogs)) return false;
    verified = true;
  }
  if (entry.inclusionProof !== undefined) {
    try {
      const checkpoint = verifyCheckpoint(entry as unknown as CheckpointEntry, tlogs);
      verifyMerkleInclusion(entry as unknown as CheckpointEntry, checkpoint);
    } catch {
      return false;
    }
    verified = true;
  }
  return verified;
}
