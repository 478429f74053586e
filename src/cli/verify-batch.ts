/**
 * `ct verify A.ctp B.ctp …`: several bundles verified on a pool of worker threads (one per core,
 * src/verify/batch/pool.ts), each exactly as `ct verify` verifies one. Threads cost a start-up
 * (modules, trust store) each, so the pool is used only for a batch big enough to gain from it;
 * smaller batches, one core, or `--threads 1` verify in this thread one after the other.
 * Results come back in the order given, whatever order the threads finish in.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { CtError } from '../core/errors.js';
import type { VerificationReport } from '../verify/report.js';
import { verifyCtp } from '../verify/ctp/verify-ctp.js';
import { WorkerPool, workerUrl } from '../verify/batch/pool.js';
import { verifyOptionsFrom, type VerifyFlags } from './verify-options.js';

/**
 * A verification thread costs about 0.2–0.4 s of CPU to start (modules, schemas, trust store), and
 * a bundle about 4 ms plus 35 ms per MiB (hashing every byte, twice for layers): the pool is used
 * automatically only for batches whose work clearly outweighs that, at least 8 bundles and 64 MiB
 * in all (measured: 100 bundles of 2 MiB, bench/verify-batch.bench.ts).
 */
export const POOL_MIN_BUNDLES = 8;
export const POOL_MIN_BYTES = 64 * 1024 * 1024;
/** Bundles handed to the pool ahead of the one being reported: bounds memory for long lists. */
const IN_FLIGHT_PER_THREAD = 4;

export type BatchResult = { path: string; report: VerificationReport } | { path: string; error: CtError };

/** Threads to use for `paths` given `--threads` (undefined: automatic). Unreadable paths count as empty. */
export async function threadsFor(paths: string[], requested: number | undefined): Promise<number> {
  if (requested !== undefined) return Math.max(1, Math.min(requested, paths.length));
  const cores = availableParallelism();
  if (paths.length < POOL_MIN_BUNDLES || cores < 2) return 1;
  let bytes = 0;
  for (const p of paths) bytes += await stat(p).then((s) => s.size, () => 0);
  return bytes >= POOL_MIN_BYTES ? Math.min(cores, paths.length) : 1;
}

/** Verifies every path; `each` gets the results in input order, as soon as each is known. */
export async function verifyBatch(paths: string[], flags: VerifyFlags, threads: number, each: (r: BatchResult) => Promise<void>): Promise<void> {
  const wrap = (path: string, p: Promise<VerificationReport>): Promise<BatchResult> =>
    p.then((report) => ({ path, report }), (e: unknown) => {
      if (e instanceof CtError) return { path, error: e };
      throw e;
    });
  if (threads <= 1) {
    const { options, policyWarnings } = await verifyOptionsFrom('verify', flags);
    for (const path of paths) {
      await each(await wrap(path, verifyCtp(path, options).then((r) => (r.warnings.unshift(...policyWarnings), r))));
    }
    return;
  }
  // The flags are checked here first, so a usage error is reported once, not per bundle.
  await verifyOptionsFrom('verify', flags);
  const pool = new WorkerPool<string, VerificationReport>(workerUrl('verify-worker', import.meta.url), { flags }, { size: threads, maxQueued: threads * IN_FLIGHT_PER_THREAD });
  try {
    const pending: Promise<BatchResult>[] = [];
    let next = 0;
    const fill = (): void => {
      while (next < paths.length && pending.length < threads * IN_FLIGHT_PER_THREAD) {
        const path = paths[next++];
        pending.push(wrap(path, pool.run(path)));
      }
    };
    fill();
    while (pending.length > 0) {
      const r = await (pending.shift() as Promise<BatchResult>);
      fill();
      await each(r);
    }
  } finally {
    await pool.close();
  }
}
