import { execFile } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CtError } from '../../src/core/errors.js';
import { GitMirror } from './git.js';

const run = promisify(execFile);

/** A policy source given as a git URL or a bare repository path rather than a directory. */
export function isGitSource(source: string): boolean {
  return /^(https?|ssh|git|file):\/\//.test(source) || /^[\w.-]+@[\w.-]+:/.test(source) || source.endsWith('.git');
}

/**
 * Keeps a checkout of a policy repository's branch head in `<dataDir>/policies/current`, replaced
 * as a whole (new directory, then rename) so that a reader never sees half of two commits. The
 * policy store reads that directory; if the repository cannot be reached, the previous checkout
 * stays and the caller decides (strict decisions fail closed when there has never been one).
 */
export class PolicyRepo {
  private readonly mirror: GitMirror;
  readonly dir: string;
  private applied: string | null = null;

  constructor(readonly remote: string, dataDir: string, private readonly branch = 'main', private readonly allowedSignersFile?: string) {
    this.mirror = new GitMirror(remote, join(dataDir, 'git'));
    this.dir = join(dataDir, 'policies', 'current');
  }

  close(): void {
    this.mirror.close();
  }

  get commit(): string | null {
    return this.applied;
  }

  /** Fetches the head; returns true when a new commit was checked out. */
  async sync(): Promise<boolean> {
    const head = await this.mirror.fetch(this.branch);
    if (head === this.applied) return false;
    if (this.applied && !(await this.mirror.isAncestor(this.applied, head))) {
      throw new CtError('POLICY_INVALID', `policy repository head ${head} does not descend from the applied ${this.applied}`, { head, applied: this.applied });
    }
    if (this.allowedSignersFile) {
      const sig = await this.mirror.verifyCommit(head, this.allowedSignersFile);
      if (!sig.ok) throw new CtError('POLICY_INVALID', `policy commit ${head} is not signed by an allowed key: ${sig.reason}`, { head });
    }
    const next = `${this.dir}.${head.slice(0, 12)}.tmp`;
    await rm(next, { recursive: true, force: true });
    await mkdir(next, { recursive: true });
    await run('git', ['--git-dir', this.mirror.dir, '--work-tree', next, 'checkout', '--force', head, '--', '.']);
    await rm(`${this.dir}.old`, { recursive: true, force: true });
    await rename(this.dir, `${this.dir}.old`).catch(() => undefined);
    await rename(next, this.dir);
    await rm(`${this.dir}.old`, { recursive: true, force: true });
    this.applied = head;
    return true;
  }
}
