import { Worker } from 'node:worker_threads';
import { CtError } from '../core/errors.js';
import { workerUrl } from '../verify/batch/pool.js';
import type { ImpactAnswer, PolicyProposal } from './impact.js';
import type { SourceText } from './load.js';

/** How long one impact judgement may take, and how many run at once (each on its own thread). */
export interface ImpactLimits { timeoutMs: number; concurrent: number; memoryMb: number }
export const IMPACT_LIMITS: ImpactLimits = { timeoutMs: 10_000, concurrent: 2, memoryMb: 256 };

/** What the worker judges: the sources in force, the proposal, and the live deployments as the JSON the API exports. */
export interface ImpactInput { base: SourceText[]; root: string; proposal: PolicyProposal; deploymentsJson: string; now: number; currentDigest: string }

let running = 0;

/**
 * A slot for one impact judgement, taken before any work for it is done (reading sources, live
 * deployments): beyond `concurrent` at once, POLICY_IMPACT_BUSY at once. `run` judges on a thread of
 * its own (impact-worker.ts), ended at `timeoutMs` (POLICY_INVALID: too costly), its heap bounded,
 * or when `signal` aborts (the client went away). `stale`: the sources on disk are no longer those
 * of the set in force. `release` must be called once, whatever happened.
 */
export function impactSlot(limits: ImpactLimits = IMPACT_LIMITS): { run(input: ImpactInput, signal?: AbortSignal): Promise<ImpactAnswer | { stale: true }>; release(): void } {
  if (running >= limits.concurrent) throw new CtError('POLICY_IMPACT_BUSY', `at most ${limits.concurrent} policy previews run at once: try again shortly`, { limit: limits.concurrent });
  running++;
  let released = false;
  return {
    release: () => {
      if (!released) running--;
      released = true;
    },
    run: (input, signal) => judge(input, limits, signal),
  };
}

const ended = () => new CtError('POLICY_INVALID', 'the request ended before the proposal was judged', {});

/**
 * The heap a judgement may use: `memoryMb` for the proposal, and room for the live deployments it
 * is judged against (parsed, their evidence takes about five times its JSON), up to 2 GiB.
 */
export function impactHeapMb(limits: ImpactLimits, deploymentsJson: string): number {
  return Math.min(limits.memoryMb + Math.ceil((6 * deploymentsJson.length) / (1024 * 1024)), 2048);
}

/** The live deployments' JSON in MiB, as the messages say it. */
const jsonMb = (json: string) => Math.ceil(json.length / (1024 * 1024));

async function judge(input: ImpactInput, limits: ImpactLimits, signal?: AbortSignal): Promise<ImpactAnswer | { stale: true }> {
  // Checked before a thread is started for nothing; from then on, the abort listener.
  if (signal?.aborted) throw ended();
  const heapMb = impactHeapMb(limits, input.deploymentsJson);
  const worker = new Worker(workerUrl('impact-worker', import.meta.url), { workerData: input, resourceLimits: { maxOldGenerationSizeMb: heapMb } });
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise((resolve, reject) => {
      const fail = (e: CtError) => (clearTimeout(timer), reject(e));
      // Set once the live deployments are read: what fails after is the proposal's judgement.
      let parsed = false;
      const timer = setTimeout(() => fail(parsed
        ? new CtError('POLICY_INVALID', `the proposal took more than ${limits.timeoutMs / 1000} s to judge (its patterns, policies or values): nothing was judged; make it smaller or its patterns simpler`, { timeoutMs: limits.timeoutMs })
        : new CtError('POLICY_IMPACT_TOO_LARGE', `reading the live deployments' evidence (${jsonMb(input.deploymentsJson)} MiB of JSON) took more than ${limits.timeoutMs / 1000} s: preview one environment at a time`, { timeoutMs: limits.timeoutMs })), limits.timeoutMs);
      timer.unref();
      onAbort = () => fail(ended());
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: { parsed?: true; answer?: ImpactAnswer; stale?: true; error?: { code: string; message: string } }) => {
        if (m.parsed) return void (parsed = true);
        clearTimeout(timer);
        // USAGE: the proposal's shape; JSON_INVALID: the server's own live records (a 500, not the proposal's fault).
        if (m.error) reject(new CtError(m.error.code === 'USAGE' || m.error.code === 'JSON_INVALID' ? m.error.code : 'POLICY_INVALID', m.error.message, {}));
        else resolve(m.stale ? { stale: true } : m.answer!);
      });
      worker.once('error', (e: NodeJS.ErrnoException) => fail(e.code === 'ERR_WORKER_OUT_OF_MEMORY' && !parsed
        // Reading the live deployments' evidence: the server's bound, not the proposal's fault.
        ? new CtError('POLICY_IMPACT_TOO_LARGE', `the preview needed more than its ${heapMb} MiB of memory (the live deployments' evidence is ${jsonMb(input.deploymentsJson)} MiB of JSON): preview one environment at a time`, { heapMb })
        : new CtError('POLICY_INVALID', `the proposal could not be judged: ${e.message.slice(0, 300)}`, {})));
      worker.once('exit', (code) => fail(new CtError('POLICY_INVALID', `the proposal could not be judged (its thread ended with ${code})`, {})));
    });
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    void worker.terminate();
  }
}
