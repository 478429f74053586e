/**
 * A Sigstore verification thread (pool.ts): checks each attestation file it is sent exactly as the
 * in-thread verifier does (checkSigstoreInput) and answers with the outcome or the CtError's code,
 * message and details. Trusted roots arrive as JSON and are parsed once per digest.
 */
import { parentPort } from 'node:worker_threads';
import { CtError } from '../../core/errors.js';
import { checkSigstoreInput } from './attestation-verifier.js';
import { trustedRootFromJSON, type LoadedTrustedRoot } from './trusted-root.js';
import type { SigstoreJob } from './pool.js';

const roots = new Map<string, LoadedTrustedRoot>();

function rootOf(r: NonNullable<SigstoreJob['root']>): LoadedTrustedRoot {
  let root = roots.get(r.digest);
  if (!root) {
    root = trustedRootFromJSON(r.json, r.source);
    if (roots.size >= 16) roots.clear();
    // Keyed by the digest this thread computed, not the one it was told.
    roots.set(root.digest, root);
  }
  return root;
}

parentPort?.on('message', (m: { id: number; input: SigstoreJob }) => {
  const j = m.input;
  try {
    const data = Buffer.from(j.data.buffer, j.data.byteOffset, j.data.byteLength);
    const ok = checkSigstoreInput({ data, imageDigest: j.imageDigest, ...(j.identity ? { identity: j.identity } : {}), ...(j.root ? { root: rootOf(j.root) } : {}), ...(j.thresholds ? { thresholds: j.thresholds } : {}) });
    parentPort?.postMessage({ id: m.id, ok });
  } catch (e) {
    const err = e instanceof CtError
      ? { code: e.code, message: e.message, details: e.details }
      : { code: 'VERIFY_WORKER_FAILED', message: `verification failed: ${String((e as Error)?.message ?? e).slice(0, 500)}`, details: {} };
    parentPort?.postMessage({ id: m.id, err });
  }
});
