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
 * `tlogs.find((t) => t.logID[0:4] equals the line's key hint && t.baseURL.match(name))`: the name,
 * unsigned text of the bundle (signature lines are not part of the signed note), is compiled as a
 * regular expression, but only on a line whose key hint (the first 4 bytes of its base64 signature)
 * is a trusted log's; the `&&` skips every other line. `(.*)*x` as one such extra line in an
 * otherwise valid bundle made one verification take 75 s (backtracking over a 28-character URL; each
 * further character doubles it).
 *
 * So only the lines the library compiles are checked: other lines are witness cosignatures, whose
 * names the C2SP signed-note format leaves open (anything without whitespace or `+`:
 * witness@example.org, bücher.example), and refusing them broke valid Rekor v2 bundles. On those
 * lines a name may hold no `\ ^ $ | ? * + ( ) [ ] { }`: what is left is a sequence of literal
 * characters and `.` (one character, any), with no quantifier, group, alternation, class, anchor or
 * escape, so there is nothing to backtrack into: a match tries each start in the URL and compares at
 * most name-length characters from it, linear in each. Real names keep their dots. Nothing left can
 * make `new RegExp` throw either.
 *
 * Each line with a trusted log's hint whose name matches costs a signature check (~0.1 ms), and the
 * library tries lines until one verifies: 5,000 such lines took ~600 ms. A checkpoint holds its log's
 * signature and a few witnesses'; more than MAX_CHECKPOINT_SIGNATURES lines is refused outright,
 * which also bounds the per-line decoding here and in the library.
 */
const CHECKPOINT_SEPARATOR = '\n\n';
// The library's own pattern (tlog/checkpoint.js SIGNATURE_REGEX), so the same lines are seen.
const SIGNATURE_LINE = /\u2014 (\S+) (\S+)\n/g;
const REGEXP_SYNTAX = /[\\^$|?*+()[\]{}]/;
const MAX_NAME = 253;
export const MAX_CHECKPOINT_SIGNATURES = 16;

export type CheckpointHazard =
  | { reason: 'name'; name: string }
  | { reason: 'count'; limit: number };

/**
 * Why a checkpoint envelope must not reach @sigstore/verify, or undefined: more than
 * MAX_CHECKPOINT_SIGNATURES signature lines, or a line the library would compile (key hint of one of
 * `tlogs`) whose name is not a linear pattern (length 1-253, no regular-expression syntax but `.`).
 * The name reported is cut to 100 characters.
 */
export function checkpointHazard(envelope: string, tlogs: readonly { logID: Buffer }[]): CheckpointHazard | undefined {
  const split = envelope.indexOf(CHECKPOINT_SEPARATOR);
  if (split < 0) return undefined;
  const hints = tlogs.map((t) => t.logID.subarray(0, 4));
  let count = 0;
  for (const m of envelope.slice(split + CHECKPOINT_SEPARATOR.length).matchAll(SIGNATURE_LINE)) {
    if (++count > MAX_CHECKPOINT_SIGNATURES) return { reason: 'count', limit: MAX_CHECKPOINT_SIGNATURES };
    const [, name, signature] = m;
    // Decoded as the library decodes it (Buffer's lenient base64), so the hint is the one it compares.
    const hint = Buffer.from(signature, 'base64').subarray(0, 4);
    if (!hints.some((h) => h.equals(hint))) continue;
    if (name.length > MAX_NAME || REGEXP_SYNTAX.test(name)) return { reason: 'name', name: name.slice(0, 100) };
  }
  return undefined;
}
