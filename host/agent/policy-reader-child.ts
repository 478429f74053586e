/**
 * The child process of ChildPolicyReader (policy-reader.ts): reads the policy files named by its
 * arguments (readPolicySources) and writes their texts, or the error, as one JSON document on
 * stdout. Only reads: it imports read-sources.ts alone (not the compiler, which stays in the agent),
 * so a reload costs about a bare `node` start.
 *
 * - SIGHUP and SIGINT are ignored: a terminal's hang-up or Ctrl-C reaches the agent's whole process
 *   group, and for the agent SIGHUP means "read again", not "fail the read in progress". The agent
 *   ends this process with SIGKILL when it needs to.
 * - Its stdin is a pipe from the agent, never written: when it ends, the agent is gone (a SIGKILL
 *   too), and this process ends at once, a hung read with it (Node has no parent-death signal).
 *   process.exit would wait for the hung read's pool thread: SIGKILL does not.
 */
import { readPolicySources } from '../../src/policy/read-sources.js';

for (const s of ['SIGHUP', 'SIGINT'] as const) process.on(s, () => undefined);
const orphaned = () => process.kill(process.pid, 'SIGKILL');
process.stdin.once('end', orphaned).once('error', orphaned).resume();
// Watched, not waited for: the answer written, the process ends by itself.
(process.stdin as { unref?: () => void }).unref?.();

readPolicySources(process.argv.slice(2)).then(
  (texts) => process.stdout.write(JSON.stringify({ texts })),
  (e: { code?: unknown; message?: unknown; details?: unknown }) => process.stdout.write(JSON.stringify({
    error: { code: typeof e?.code === 'string' ? e.code : 'IO_ERROR', message: String(e?.message ?? e), details: e?.details },
  })),
);
