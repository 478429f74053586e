import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CtError } from '../../src/core/errors.js';
import { GitObjectReader } from './object-reader.js';

const run = promisify(execFile);

/**
 * A mirror of a desired-state (or policy) repository, driven through the git CLI: the server
 * fetches the branch head itself, so a webhook payload can only *trigger* a fetch, never name
 * the commit to apply.
 */
export class GitMirror {
  readonly dir: string;
  private objects: GitObjectReader | undefined;

  constructor(readonly remote: string, cacheDir: string) {
    this.dir = join(cacheDir, createHash('sha256').update(remote).digest('hex').slice(0, 16) + '.git');
  }

  private async git(args: string[], opts: { allowFail?: boolean } = {}): Promise<{ stdout: string; code: number }> {
    try {
      const { stdout } = await run('git', ['--git-dir', this.dir, ...args], {
        maxBuffer: 64 * 1024 * 1024,
        // A stalled remote must not hold every later reconcile behind it.
        timeout: 120_000,
        killSignal: 'SIGKILL',
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_HTTP_LOW_SPEED_LIMIT: '1000', GIT_HTTP_LOW_SPEED_TIME: '30' },
      });
      return { stdout, code: 0 };
    } catch (e) {
      const err = e as { code?: number; stderr?: string };
      if (opts.allowFail) return { stdout: '', code: typeof err.code === 'number' ? err.code : 1 };
      throw new CtError('IO_ERROR', `git ${args[0]} failed for ${this.remote}: ${(err.stderr ?? String(e)).trim().slice(0, 500)}`, { remote: this.remote });
    }
  }

  async fetch(branch: string): Promise<string> {
    if (!/^[\w./-]{1,200}$/.test(branch) || branch.includes('..')) throw new CtError('USAGE', `invalid branch name ${JSON.stringify(branch)}`);
    if (!existsSync(this.dir)) {
      mkdirSync(this.dir, { recursive: true });
      await this.git(['init', '--bare', '--quiet']);
    }
    await this.git(['fetch', '--quiet', '--no-tags', '--force', this.remote, `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    const head = await this.reader.read(`refs/remotes/origin/${branch}^{commit}`);
    if (!head) throw new CtError('IO_ERROR', `branch ${branch} of ${this.remote} has no commit`, { remote: this.remote });
    return head.oid;
  }

  /** The repository's objects, read by one long-lived `git cat-file --batch`. */
  get reader(): GitObjectReader {
    this.objects ??= new GitObjectReader(this.dir);
    return this.objects;
  }

  close(): void {
    this.objects?.close();
    this.objects = undefined;
  }

  /** True when `ancestor` is `descendant` or one of its ancestors. */
  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const r = await this.git(['merge-base', '--is-ancestor', ancestor, descendant], { allowFail: true });
    return r.code === 0;
  }

  async listFiles(commit: string, path: string): Promise<string[]> {
    const out = await this.git(['ls-tree', '-r', '--name-only', commit, '--', path || '.']);
    return out.stdout.split('\n').filter(Boolean);
  }

  async readFile(commit: string, file: string): Promise<string> {
    return (await this.git(['show', `${commit}:${file}`])).stdout;
  }

  /**
   * Checks the commit's SSH or GPG signature with git itself; `allowedSignersFile` is an SSH
   * allowed-signers file. Returns the reason when the commit is not signed by an allowed key.
   */
  async verifyCommit(commit: string, allowedSignersFile: string): Promise<{ ok: boolean; reason?: string }> {
    try {
      // SSH signatures only: a GPG or x509 signature by any key in the service's keyring must not pass.
      await run('git', ['--git-dir', this.dir, '-c', `gpg.ssh.allowedSignersFile=${allowedSignersFile}`, '-c', 'gpg.program=false', '-c', 'gpg.x509.program=false', 'verify-commit', commit], {
        timeout: 30_000,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      });
      return { ok: true };
    } catch (e) {
      return { ok: false, reason: ((e as { stderr?: string }).stderr ?? 'unsigned').trim().slice(0, 300) || 'no signature' };
    }
  }
}
