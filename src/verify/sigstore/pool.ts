/**
 * Sigstore attestations checked on verification threads (#14 target 1, the server): a bundle costs
 * a few milliseconds of CPU, all synchronous, so a burst of distinct bundles verified in the
 * server's thread would hold its event loop (every request, the host channel) for as long. Here
 * each attestation file goes to a bounded pool of threads (src/verify/batch/pool.ts) running the
 * very check `ct verify` runs (checkSigstoreInput); the verdict, findings and error codes are the
 * same, only the thread differs. More waiting files than the bound are refused with
 * VERIFY_QUEUE_FULL and a thread that dies fails its file with VERIFY_WORKER_FAILED: either rejects
 * the bundle (fail closed), never a pass.
 */
import { availableParallelism } from 'node:os';
import { CtError } from '../../core/errors.js';
import type { AttestationVerifier } from '../report.js';
import { WorkerPool, workerUrl, type PoolOptions } from '../batch/pool.js';
import type { SigstoreAttestationVerifierOptions, SigstoreInput, SigstoreInputOutcome } from './attestation-verifier.js';
import { defaultVerifiers } from '../ctp/verifiers.js';

/** What crosses to a thread: plain data (the trusted root as its JSON, rebuilt and kept there). */
export interface SigstoreJob {
  data: Uint8Array;
  imageDigest: string;
  identity?: SigstoreInput['identity'];
  root?: { json: Record<string, unknown>; digest: string; source: string };
  thresholds?: SigstoreInput['thresholds'];
}

/** Threads by default: the cores, at most 4 (the server's own thread is mostly waiting on I/O). */
const DEFAULT_THREADS = Math.min(4, availableParallelism());

export class SigstoreVerifierPool {
  /** The verifiers of a .ctp (VCS in this thread, Sigstore on the pool), for verifyCtpArchive. */
  readonly verifiers: AttestationVerifier[];
  private pool?: WorkerPool<SigstoreJob, SigstoreInputOutcome>;
  private closed = false;

  constructor(opts: SigstoreAttestationVerifierOptions = {}, private readonly poolOptions: PoolOptions = {}) {
    // @sigstore/* is loaded in this thread only to assemble results (lazily, as for `ct verify`).
    this.verifiers = defaultVerifiers(opts, (input) => this.run(input));
  }

  private run(input: SigstoreInput): Promise<SigstoreInputOutcome> {
    if (this.closed) return Promise.reject(new CtError('VERIFY_WORKER_FAILED', 'verification pool is closed', {}));
    // Threads start with the first Sigstore attestation: a server that never sees one pays nothing.
    this.pool ??= new WorkerPool<SigstoreJob, SigstoreInputOutcome>(workerUrl('worker', import.meta.url), null, { size: DEFAULT_THREADS, maxQueued: 256, ...this.poolOptions });
    const { root } = input;
    return this.pool.run({
      data: input.data,
      imageDigest: input.imageDigest,
      ...(input.identity ? { identity: input.identity } : {}),
      ...(root ? { root: { json: root.json, digest: root.digest, source: root.source } } : {}),
      ...(input.thresholds ? { thresholds: input.thresholds } : {}),
    });
  }

  /** Stops the threads; files still waiting fail with VERIFY_WORKER_FAILED. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }
}
