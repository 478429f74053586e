import { execFile } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CtError } from '../../src/core/errors.js';
import type { Db } from '../store/db.js';
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
 *
 * A head must descend from the last commit accepted, which is kept in the database
 * (`policy_state`), not only in memory: after a restart, or on another replica, an older commit
 * force-pushed to the branch (signed once, so the signature check alone lets it through) is still
 * refused.
 */
export class PolicyRepo {
  private readonly mirror: GitMirror;
  readonly dir: string;
  private applied: string | null = null;

  constructor(readonly remote: string, dataDir: string, private readonly db: Db, private readonly branch = 'main', private readonly allowedSignersFile?: string) {
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
    await this.mustDescend(this.applied, head);
    if (this.allowedSignersFile) {
      const sig = await this.mirror.verifyCommit(head, this.allowedSignersFile);
      if (!sig.ok) throw new CtError('POLICY_INVALID', `policy commit ${head} is not signed by an allowed key: ${sig.reason}`, { head });
    }
    // Recorded before the checkout: once a head is accepted nothing older may follow it, even if
    // this checkout fails; a database that cannot be written leaves the checkout as it was.
    await this.advance(head);
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

  /** Refuses `head` unless it is `applied` or descends from it (null: nothing accepted yet). */
  private async mustDescend(applied: string | null, head: string): Promise<void> {
    if (!applied || applied === head || (await this.mirror.isAncestor(applied, head))) return;
    throw new CtError('POLICY_INVALID', `policy repository head ${head} does not descend from the applied ${applied}`, { head, applied });
  }

  /** The last commit of this repository and branch accepted by any process sharing the database. */
  private async recorded(): Promise<string | null> {
    const [row] = await this.db.query<{ applied_sha: string }>('SELECT applied_sha FROM policy_state WHERE repo = ? AND branch = ?', [this.remote, this.branch]);
    return row?.applied_sha ?? null;
  }

  /**
   * Checks `head` against the recorded commit and records it in its place, compare-and-set: a
   * replica that recorded a newer commit in between is seen (and `head` checked against it)
   * instead of being overwritten with an older one.
   */
  private async advance(head: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const recorded = await this.recorded();
      await this.mustDescend(recorded, head);
      if (recorded === head) return;
      const { changes } = await this.db.run(
        `INSERT INTO policy_state (repo, branch, applied_sha, applied_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo, branch) DO UPDATE SET applied_sha = excluded.applied_sha, applied_at = excluded.applied_at WHERE policy_state.applied_sha = ?`,
        [this.remote, this.branch, head, Date.now(), recorded],
      );
      if (changes > 0) return;
    }
    throw new CtError('IO_ERROR', `the policy repository's applied commit kept changing while ${head} was recorded`, { head });
  }
}
