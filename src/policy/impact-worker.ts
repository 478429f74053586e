/**
 * One policy-impact judgement on a thread of its own (impact-thread.ts): the proposal is anyone's
 * who may read, and compiling and judging it (patterns tested against every other policy's values
 * and every live deployment) is work whose size the proposal chooses. Here it cannot hold the
 * server's event loop, and the thread is ended at its deadline.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileTexts, type SourceText } from './load.js';
import { impactAnswer, policyImpact, type PolicyProposal } from './impact.js';
import { parseDeployments } from './diff.js';

interface Input { base: SourceText[]; root: string; proposal: PolicyProposal; deploymentsJson: string; now: number; currentDigest: string }

const input = workerData as Input;
try {
  // The set in force, compiled again from the same sources (a compiled set holds functions: it
  // cannot cross threads); sources changed since it was loaded are said, not judged against.
  const current = compileTexts(input.base);
  if (!current.set || current.set.digest !== input.currentDigest) parentPort!.postMessage({ stale: true });
  else {
    // Parsed here too: a few hundred live deployments' evidence took the event loop most of a second.
    const deployments = parseDeployments('(live deployments)', input.deploymentsJson, { positions: false });
    // From here on, the memory and time are the proposal's (impact-thread.ts tells the two apart).
    parentPort!.postMessage({ parsed: true });
    parentPort!.postMessage({ answer: impactAnswer(policyImpact(current.set, input.base, input.root, input.proposal, deployments, input.now)) });
  }
} catch (e) {
  parentPort!.postMessage({ error: { code: (e as { code?: string }).code ?? 'POLICY_INVALID', message: String((e as Error).message ?? e).slice(0, 500) } });
}
