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

/**
 * @sigstore/verify's verifyCheckpoint picks the log for each signature line of a checkpoint with
 * `tlog.baseURL.match(name)`: the name, unsigned text of the bundle (signature lines are not part of
 * the signed note), is compiled as a regular expression. `(.*)*x` as one extra line in an otherwise
 * valid bundle made one verification take 75 s (backtracking over a 28-character URL; each further
 * character doubles it). Logs name themselves by host, port and path (rekor.sigstore.dev,
 * 127.0.0.1:3000); a name of these characters is a pattern without quantifiers, groups, classes,
 * alternation or escapes, whose match is linear. The lines are found as the library finds them.
 */
const CHECKPOINT_SEPARATOR = '\n\n';
const SIGNATURE_LINE = /\u2014 (\S+) (\S+)\n/g;
const LINEAR_NAME = /^[A-Za-z0-9._:/-]{1,253}$/;

/** The first checkpoint signature name the library would compile that is not a plain log name (bounded), or undefined. */
export function unsafeCheckpointName(envelope: string): string | undefined {
  const split = envelope.indexOf(CHECKPOINT_SEPARATOR);
  if (split < 0) return undefined;
  for (const m of envelope.slice(split + CHECKPOINT_SEPARATOR.length).matchAll(SIGNATURE_LINE)) {
    if (!LINEAR_NAME.test(m[1])) return m[1].slice(0, 100);
  }
  return undefined;
}
