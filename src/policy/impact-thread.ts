import { Worker } from 'node:worker_threads';
import { CtError } from '../core/errors.js';
import { workerUrl } from '../verify/batch/pool.js';
import type { ImpactAnswer, PolicyProposal } from './impact.js';
import type { SourceText } from './load.js';
import type { Deployment } from './diff.js';

/** How long one impact judgement may take, and how many run at once (each on its own thread). */
export interface ImpactLimits { timeoutMs: number; concurrent: number; memoryMb: number }
export const IMPACT_LIMITS: ImpactLimits = { timeoutMs: 10_000, concurrent: 2, memoryMb: 256 };

let running = 0;

/**
 * policyImpact on a thread of its own (impact-worker.ts), ended at `timeoutMs` (POLICY_INVALID:
 * too costly), at most `concurrent` at once (POLICY_IMPACT_BUSY beyond), its heap bounded.
 * `stale`: the sources on disk are no longer those of the set in force.
 */
export async function impactOnThread(input: { base: SourceText[]; root: string; proposal: PolicyProposal; deployments: Deployment[]; now: number; currentDigest: string }, limits: ImpactLimits = IMPACT_LIMITS): Promise<ImpactAnswer | { stale: true }> {
  if (running >= limits.concurrent) throw new CtError('POLICY_IMPACT_BUSY', `at most ${limits.concurrent} policy previews run at once: try again shortly`, { limit: limits.concurrent });
  running++;
  const worker = new Worker(workerUrl('impact-worker', import.meta.url), { workerData: input, resourceLimits: { maxOldGenerationSizeMb: limits.memoryMb } });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new CtError('POLICY_INVALID', `the proposal took more than ${limits.timeoutMs / 1000} s to judge (its patterns, policies or values): nothing was judged; make it smaller or its patterns simpler`, { timeoutMs: limits.timeoutMs })), limits.timeoutMs);
      timer.unref();
      worker.once('message', (m: { answer?: ImpactAnswer; stale?: true; error?: { code: string; message: string } }) => {
        clearTimeout(timer);
        if (m.error) reject(new CtError(m.error.code === 'USAGE' ? 'USAGE' : 'POLICY_INVALID', m.error.message, {}));
        else resolve(m.stale ? { stale: true } : m.answer!);
      });
      worker.once('error', (e) => {
        clearTimeout(timer);
        reject(new CtError('POLICY_INVALID', `the proposal could not be judged: ${e.message.slice(0, 300)}`, {}));
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new CtError('POLICY_INVALID', `the proposal could not be judged (its thread ended with ${code})`, {}));
      });
    });
  } finally {
    running--;
    void worker.terminate();
  }
}
