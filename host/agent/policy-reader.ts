/**
 * The host agent's policy reads, in a child process. A read that hangs (a FIFO named by
 * --policies, an NFS server gone) blocks a libuv pool thread for as long as it lasts, and Node
 * neither cancels that nor exits while it does (process.exit waits for the pool's threads): the
 * agent printed its error, or finished its SIGTERM stop, and stayed up until the file was written.
 * In a child, close() kills the read and drops its pipes: nothing of it keeps the agent alive. The
 * child ends by itself when the agent is gone (its stdin pipe ends: an agent killed with SIGKILL
 * left a hung reader running for good) and ignores a terminal's SIGHUP and SIGINT (which reach the
 * whole process group: a Ctrl-C or hang-up failed the read in progress): policy-reader-child.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { boundText, CtError } from '../../src/core/errors.js';
import { CODES, type ErrorCode } from '../../src/core/codes.js';
import type { SourceText } from '../../src/policy/read-sources.js';

/**
 * More than most policy repositories' texts as JSON (a larger answer is refused, IO_ERROR). Each
 * file is at most MAX_POLICY_FILE_BYTES already (POLICY_INVALID, too-large, as in-process).
 */
export const MAX_POLICY_READ_BYTES = 64 << 20;

const CHILD = fileURLToPath(new URL('./policy-reader-child.js', import.meta.url));

export class ChildPolicyReader {
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  /** Reads the texts of the policy files at `paths` (readPolicySources' answer and errors). */
  readonly read = (paths: readonly string[]): Promise<SourceText[]> => {
    if (this.closed) return Promise.reject(new CtError('IO_ERROR', 'the policies are no longer read: the agent is stopping', {}));
    return new Promise((resolve, reject) => {
      // stdin: a pipe never written, whose end tells the child the agent is gone.
      const child = spawn(process.execPath, [CHILD, ...paths], { stdio: ['pipe', 'pipe', 'pipe'] });
      this.children.add(child);
      const chunks: Buffer[] = [];
      let size = 0;
      let stderr = '';
      let failed: Error | undefined;
      child.stdout!.on('data', (b: Buffer) => {
        size += b.length;
        if (size > MAX_POLICY_READ_BYTES) {
          failed ??= new CtError('IO_ERROR', `${paths.join(', ')}: the policy files' texts come to more than ${MAX_POLICY_READ_BYTES} bytes as JSON`, {});
          child.kill('SIGKILL');
        } else chunks.push(b);
      });
      child.stderr!.on('data', (b: Buffer) => {
        if (stderr.length < 4096) stderr += b.toString();
      });
      // Not started (no node at process.execPath: the agent's installation replaced or removed).
      child.once('error', (e) => (failed ??= new CtError('IO_ERROR', `the policy reader could not be started (${process.execPath}): ${(e as NodeJS.ErrnoException).code ?? e.message}`, { path: process.execPath, errno: (e as NodeJS.ErrnoException).code }, { cause: e })));
      // Its end is the child's own (killed, or gone with its error): not the agent's failure.
      child.stdin!.on('error', () => undefined);
      child.once('close', (code, signal) => {
        this.children.delete(child);
        if (failed) return reject(failed);
        if (this.closed) return reject(new CtError('IO_ERROR', 'the policy read was stopped: the agent is stopping', {}));
        let answer: { texts?: SourceText[]; error?: { code: string; message: string; details?: Record<string, unknown> } };
        try {
          answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new CtError('IO_ERROR', `the policy reader ended (${signal ?? `exit ${code}`}) without an answer: ${boundText(stderr.trim()) || 'no message'}`, {}));
        }
        const e = answer.error;
        if (e) return reject(new CtError(Object.hasOwn(CODES, e.code) ? (e.code as ErrorCode) : 'IO_ERROR', e.message, e.details ?? {}));
        resolve(answer.texts ?? []);
      });
    });
  };

  /** Kills the reads in progress (their loads fail) and refuses new ones; the process is not kept up by them. */
  close(): void {
    this.closed = true;
    for (const child of this.children) {
      child.kill('SIGKILL');
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.unref();
    }
  }
}
