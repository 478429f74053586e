/**
 * A verification thread of `ct verify` with several bundles (src/cli/verify-batch.ts): it builds
 * the verifier from the same flags `ct verify` was given (verifyOptionsFrom, once per thread) and
 * verifies each .ctp it is sent exactly as `ct verify` verifies one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CtError } from '../core/errors.js';
import { verifyCtp } from '../verify/ctp/verify-ctp.js';
import { verifyOptionsFrom, type VerifyFlags } from './verify-options.js';

const { flags } = workerData as { flags: VerifyFlags };
const ready = verifyOptionsFrom('verify', flags);
ready.catch(() => undefined); // reported with the first task

parentPort?.on('message', (m: { id: number; input: string }) => {
  void (async () => {
    try {
      const { options, policyWarnings } = await ready;
      const report = await verifyCtp(m.input, options);
      report.warnings.unshift(...policyWarnings);
      // A plain JSON copy: what the CLI prints, and safe to send between threads.
      parentPort?.postMessage({ id: m.id, ok: JSON.parse(JSON.stringify(report)) });
    } catch (e) {
      const err = e instanceof CtError ? { code: e.code, message: e.message, details: e.details } : { code: 'VERIFY_WORKER_FAILED', message: `verification failed: ${String((e as Error)?.message ?? e).slice(0, 500)}`, details: {} };
      parentPort?.postMessage({ id: m.id, err });
    }
  })();
});
