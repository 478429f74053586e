/**
 * The child process of ChildPolicyReader (policy-reader.ts): reads the policy files named by its
 * arguments (readPolicySources) and writes their texts, or the error, as one JSON document on
 * stdout. Only reads: compiling stays in the agent.
 */
import { readPolicySources } from '../../src/policy/load.js';

readPolicySources(process.argv.slice(2)).then(
  (texts) => process.stdout.write(JSON.stringify({ texts })),
  (e: { code?: unknown; message?: unknown; details?: unknown }) => process.stdout.write(JSON.stringify({
    error: { code: typeof e?.code === 'string' ? e.code : 'IO_ERROR', message: String(e?.message ?? e), details: e?.details },
  })),
);
