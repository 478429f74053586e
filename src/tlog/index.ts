// VCS transparency log (SPEC §6): Merkle tree and proofs, entries, SETs, checkpoints, record
// verification and the consistency witness are pure; store/server/client/memories do I/O.
export { EMPTY_ROOT, HASH_SIZE, leafHash, nodeHash } from './hashes.js';
export { rootFromInclusion, verifyInclusion, verifyConsistency } from './verify-proofs.js';
export { consistencyProof, inclusionProof, rangeRoot, rootAt, type NodeSource, type RangeMemo } from './build-proofs.js';
export { Frontier, MerkleTree, type NewNode } from './tree.js';
export {
  REVOCATION_REASONS,
  assertLogEntry,
  attestationDigestOf,
  attestationEntry,
  canonicalEntry,
  isRfc3339,
  rfc3339Now,
  type AttestationBody,
  type LogEntry,
  type RevocationBody,
  type RevocationReason,
} from './entry.js';
export { signSet, verifySet } from './set.js';
export { noteKeyHash, noteVerifierKey, rawEd25519, signNote, splitNote, verifyNote, type NoteSignature } from './signed-note.js';
export { formatCheckpoint, parseCheckpoint, signCheckpoint, verifyCheckpoint, type Checkpoint } from './checkpoint.js';
export { signTreeHead, verifyTreeHead, type SignedTreeHead } from './sth.js';
export { hashFromHex, isLogEntryRecord, verifyLogEntryRecord, type InclusionProofJson, type LogEntryRecord, type RecordCheck } from './record.js';
export { checkLogConsistency, type CheckpointMemory, type ConsistencyOutcome, type RememberedCheckpoint } from './witness.js';
export { JsonFileCheckpointMemory } from './memory-json.js';
export { SqliteCheckpointMemory } from './memory-sqlite.js';
export { SqliteLogStore, type LogStoreOptions, type StoredEntry } from './store.js';
export { LogApi, type LogApiOptions } from './log-api.js';
export { startLogServer, type LogServer, type LogServerOptions } from './server.js';
export { fetchCheckpoint, fetchConsistencyProof, fetchRevocations, submitToLogs, type LogEndpoint, type RequestOptions, type SubmitResult, type VerifiedRevocation } from './client.js';
