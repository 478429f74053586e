import type { Checkpoint } from './checkpoint.js';
import { verifyConsistency } from './verify-proofs.js';

/** What a stateful verifier remembers per log: the largest checkpoint it has verified. */
export interface RememberedCheckpoint {
  origin: string;
  treeSize: number;
  /** lower-case hex */
  rootHash: string;
  /** when it was remembered, RFC 3339 */
  seenAt: string;
}

export interface CheckpointMemory {
  get(logId: string): Promise<RememberedCheckpoint | undefined>;
  put(logId: string, cp: RememberedCheckpoint): Promise<void>;
}

export type ConsistencyOutcome =
  | { ok: true; status: 'first-seen' | 'unchanged' | 'extended' }
  | { ok: false; code: 'LOG_INCONSISTENT'; message: string; remembered: RememberedCheckpoint };

/**
 * Compares a newly fetched (and already signature-verified) checkpoint of `logId` with the one
 * remembered: the same size must have the same root, a smaller size means the log rolled back,
 * and a larger size must come with a consistency proof from the remembered tree. Only a
 * consistent, larger checkpoint replaces the remembered one, so a log that shows one client a
 * fork can never talk the witness into forgetting the other branch. Errors from `getProof`
 * (network) propagate: "could not check" is not "inconsistent".
 */
export async function checkLogConsistency(
  memory: CheckpointMemory,
  logId: string,
  cp: Checkpoint,
  getProof: (first: number, second: number) => Promise<Buffer[]>,
  now: () => Date = () => new Date(),
): Promise<ConsistencyOutcome> {
  const old = await memory.get(logId);
  const fresh: RememberedCheckpoint = { origin: cp.origin, treeSize: cp.treeSize, rootHash: cp.rootHash.toString('hex'), seenAt: now().toISOString() };
  if (!old) {
    await memory.put(logId, fresh);
    return { ok: true, status: 'first-seen' };
  }
  const inconsistent = (message: string): ConsistencyOutcome => ({ ok: false, code: 'LOG_INCONSISTENT', message: `log ${logId}: ${message}`, remembered: old });
  if (old.origin !== cp.origin) return inconsistent(`origin changed from ${JSON.stringify(old.origin)} to ${JSON.stringify(cp.origin)}`);
  if (cp.treeSize < old.treeSize) return inconsistent(`tree shrank from ${old.treeSize} to ${cp.treeSize} entries`);
  if (cp.treeSize === old.treeSize) {
    return old.rootHash === fresh.rootHash ? { ok: true, status: 'unchanged' } : inconsistent(`two different roots for tree size ${cp.treeSize} (fork)`);
  }
  const proof = await getProof(old.treeSize, cp.treeSize);
  if (!verifyConsistency(old.treeSize, cp.treeSize, proof, Buffer.from(old.rootHash, 'hex'), cp.rootHash)) {
    return inconsistent(`tree of ${cp.treeSize} entries is not an extension of the remembered tree of ${old.treeSize} (fork)`);
  }
  await memory.put(logId, fresh);
  return { ok: true, status: 'extended' };
}
