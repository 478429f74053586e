import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { CtError } from '../../src/core/errors.js';
import { GitObjectReader, ObjectTooLarge } from './object-reader.js';

const run = promisify(execFile);

/**
 * Largest commit object the ancestry walk reads (a signed commit's header is a few KiB): anyone
 * who can push chooses a commit's message, and a chain of 15 MiB messages read in process froze
 * the event loop for seconds at every poll. A larger commit is left to `git merge-base`.
 */
export const MAX_WALKED_COMMIT_BYTES = 64 * 1024;
/** Bytes of commits one walk reads in all before it leaves the question to `git merge-base`. */
const MAX_WALKED_BYTES = 4 * 1024 * 1024;
/** `git merge-base --is-ancestor` runs at most this long (in its own process). */
const MERGE_BASE_TIMEOUT_MS = 60_000;
/** Ancestry answers and signature refusals remembered (each a few dozen bytes). */
const MAX_REMEMBERED = 256;

/**
 * A mirror of a desired-state (or policy) repository, driven through the git CLI: the server
 * fetches the branch head itself, so a webhook payload can only *trigger* a fetch, never name
 * the commit to apply.
 */
const OBJECT_ID = /^[0-9a-f]{40,64}$/;

/**
 * A commit's parents as git reads them: the `parent` lines right after its `tree` line, and no
 * others. A `parent` line further down (after `committer`) is an unknown header to git, which
 * `git fsck --strict` and a forge's push checks accept: counting it let an orphan commit pass as
 * a descendant of the applied one (a history rewrite taken for a fast-forward).
 */
export function commitParents(commit: Buffer): string[] {
  const m = /^tree [0-9a-f]{40,64}\n((?:parent [0-9a-f]{40,64}\n)*)/.exec(commit.subarray(0, Math.min(commit.length, 64 * 1024)).toString('latin1'));
  if (!m) return [];
  return [...m[1].matchAll(/^parent ([0-9a-f]{40,64})$/gm)].map((p) => p[1]);
}

/**
 * `text` with every URL in it masked: its user and password (`https://***@host/…`) and the value
 * of each query parameter (`?private_token=***`). A configured remote may carry a token in either
 * place; this is the one mask for wherever a remote is shown (messages, logs, the API, the banner).
 */
export function withoutCredentials(text: string): string {
  // The user and password up to the last '@' before the path (a password may hold quotes, '<' or an
  // unencoded '@'), and each query value up to the next space (a token may hold a quote).
  // A query segment without '=' (a bare token) is masked whole.
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]+@/gi, '$1***@')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, (url) => url.replace(/([?&;])([^&;#\s]*)/g, (_m, sep: string, seg: string) => `${sep}${seg.includes('=') ? `${seg.slice(0, seg.indexOf('=') + 1)}***` : '***'}`));
}

export class GitMirror {
  readonly dir: string;
  private objects: GitObjectReader | undefined;
  /**
   * `ancestor descendant` → whether it is: commits never change, so neither does the answer. A
   * refused force-push stays the head until someone pushes again, and every poll asks again.
   */
  private readonly ancestry = new Map<string, boolean>();
  /** `commit sha256(allowed signers)` → why git refused its signature (the same commit and keys, the same answer). */
  private readonly unsigned = new Map<string, string>();
  /** Where the allowed-signers copies git is given live (made at the first signature check). */
  private signersDir: Promise<string> | undefined;

  /** The remote as messages show it (withoutCredentials: a token in it is masked). */
  get shown(): string {
    return withoutCredentials(this.remote);
  }

  /** True when the repository is read where it is (a local repository) instead of mirrored. */
  readonly inPlace: boolean;

  /**
   * `readInPlace`: a repository on this machine is read where it is (read-only: objects and refs),
   * with no fetch and no copy. Only for callers that never write to the git directory.
   */
  constructor(readonly remote: string, cacheDir: string, opts: { readInPlace?: boolean } = {}) {
    const local = opts.readInPlace ? localGitDir(remote) : undefined;
    this.inPlace = Boolean(local);
    this.dir = local ?? join(cacheDir, createHash('sha256').update(remote).digest('hex').slice(0, 16) + '.git');
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
      // The remote may carry a token (https://x-access-token:…@host/repo): never in a message (logs, GET /api/v1/sync).
      throw new CtError('IO_ERROR', withoutCredentials(`git ${args[0]} failed for ${this.shown}: ${(err.stderr ?? String(e)).trim().slice(0, 500)}`), { remote: this.shown });
    }
  }

  async fetch(branch: string): Promise<string> {
    if (!/^[\w./-]{1,200}$/.test(branch) || branch.includes('..')) throw new CtError('USAGE', `invalid branch name ${JSON.stringify(branch)}`);
    if (this.inPlace) {
      // Read in place: the branch head from the ref files themselves (a long-running cat-file may
      // cache packed refs), then the commit through the reader.
      const sha = readRef(this.dir, `refs/heads/${branch}`);
      const head = sha ? await this.commitId(`${sha}^{commit}`) : null;
      if (!head) throw new CtError('IO_ERROR', `branch ${branch} of ${this.shown} has no commit`, { remote: this.shown });
      return head;
    }
    if (!existsSync(this.dir)) {
      mkdirSync(this.dir, { recursive: true });
      await this.git(['init', '--bare', '--quiet']);
    }
    await this.git(['fetch', '--quiet', '--no-tags', '--force', this.remote, `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    const head = await this.commitId(`refs/remotes/origin/${branch}^{commit}`);
    if (!head) throw new CtError('IO_ERROR', `branch ${branch} of ${this.shown} has no commit`, { remote: this.shown });
    return head;
  }

  /**
   * The id of the commit `name` peels to, or null. Only its id is wanted: a commit larger than the
   * walk's limit (anyone who can push chooses its message) is not read, git's header names it.
   */
  private async commitId(name: string): Promise<string | null> {
    try {
      return (await this.reader.read(name, MAX_WALKED_COMMIT_BYTES))?.oid ?? null;
    } catch (e) {
      if (e instanceof ObjectTooLarge) return e.oid;
      throw e;
    }
  }

  /** The repository's objects, read by one long-lived `git cat-file --batch`. */
  get reader(): GitObjectReader {
    this.objects ??= new GitObjectReader(this.dir);
    return this.objects;
  }

  close(): void {
    this.objects?.close();
    this.objects = undefined;
    void this.signersDir?.then((d) => rmSync(d, { recursive: true, force: true }), () => undefined);
    this.signersDir = undefined;
  }

  /**
   * True when `ancestor` is `descendant` or one of its ancestors. Walks parents through the reader
   * (a reconcile's previous commit is usually a few commits back), reading each commit only up to
   * MAX_WALKED_COMMIT_BYTES; a long walk, or a larger commit, is left to `git merge-base` in its
   * own process. Answers are remembered: asking again about a refused head reads nothing.
   */
  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    // Object ids only (the applied commit is read back from the database, which an operator may
    // edit): never a string git could take for an option.
    if (!OBJECT_ID.test(ancestor) || !OBJECT_ID.test(descendant)) return false;
    const key = `${ancestor} ${descendant}`;
    const known = this.ancestry.get(key);
    if (known !== undefined) return known;
    const walked = await this.walkToAncestor(ancestor, descendant, 2_000).catch(() => undefined);
    const answer = walked ?? (await this.mergeBaseIsAncestor(ancestor, descendant));
    // git failing otherwise (a commit it does not have) says no, and is asked again next time.
    if (typeof answer === 'boolean') remember(this.ancestry, key, answer);
    return answer === true;
  }

  /**
   * `git merge-base --is-ancestor`: true (exit 0), false (exit 1), 'failed' (git said something
   * else: no, but not for good); a timeout is an error (the reconcile is tried again).
   */
  private async mergeBaseIsAncestor(ancestor: string, descendant: string): Promise<boolean | 'failed'> {
    try {
      await run('git', ['--git-dir', this.dir, 'merge-base', '--is-ancestor', '--end-of-options', ancestor, descendant], {
        timeout: MERGE_BASE_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
      });
      return true;
    } catch (e) {
      const err = e as { code?: unknown; killed?: boolean; stderr?: string };
      if (typeof err.code === 'number' && !err.killed) return err.code === 1 ? false : 'failed';
      throw new CtError('IO_ERROR', withoutCredentials(`git merge-base failed for ${this.shown}: ${err.killed ? 'timed out' : (err.stderr ?? String(e)).trim().slice(0, 500)}`), { remote: this.shown });
    }
  }

  /** true / false when decided within `budget` commits, undefined otherwise. */
  private async walkToAncestor(ancestor: string, descendant: string, budget: number): Promise<boolean | undefined> {
    if (!OBJECT_ID.test(ancestor) || !OBJECT_ID.test(descendant)) return undefined;
    const seen = new Set<string>();
    let bytes = 0;
    let frontier = [descendant];
    while (frontier.length) {
      const next: string[] = [];
      for (const c of frontier) {
        if (c === ancestor) return true;
        if (seen.has(c)) continue;
        seen.add(c);
        if (seen.size > budget) return undefined;
        // A commit over the limit rejects (ObjectTooLarge, from git's header: none of it is read).
        const o = await this.reader.read(c, MAX_WALKED_COMMIT_BYTES);
        if (!o || o.type !== 'commit') return undefined;
        bytes += o.data.length;
        if (bytes > MAX_WALKED_BYTES) return undefined;
        next.push(...commitParents(o.data));
      }
      frontier = next;
    }
    return false;
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
    // A refusal is remembered for this commit and these allowed signers (the file's content: a
    // key added to it clears the refusal); a commit's signature and date never change.
    const bytes = await readFile(allowedSignersFile).catch(() => undefined);
    const signers = bytes && createHash('sha256').update(bytes).digest('hex');
    const key = signers && `${commit} ${signers}`;
    const known = key ? this.unsigned.get(key) : undefined;
    if (known !== undefined) return { ok: false, reason: known };
    // git is given the very bytes that were hashed (a private copy named by their digest): the
    // operator's file rewritten in between (truncated, then written) must not have git's answer
    // about an empty file remembered under the new content's digest.
    const file = bytes && signers ? await this.signersCopy(signers, bytes) : allowedSignersFile;
    const config = ['-c', `gpg.ssh.allowedSignersFile=${file}`, '-c', 'gpg.program=false', '-c', 'gpg.x509.program=false'];
    const r = await this.runVerify(commit, config);
    if (!r.ok && key && (await this.isVerdict(commit, config, r))) remember(this.unsigned, key, r.reason);
    return { ok: r.ok, ...(r.ok ? {} : { reason: r.reason }) };
  }

  /**
   * Whether git's refusal judged the signature (so the same commit and keys get the same answer)
   * rather than failing to judge it: ssh-keygen missing, killed, out of files or memory, a timeout.
   * Those are asked again at the next poll. The verdicts are ssh-keygen's own "No principal
   * matched." (no allowed key signed it), git's `bad/incompatible signature` (a malformed one), and
   * silence from git when the commit carries no signature it checks: unsigned, or GPG/x509 (their
   * programs are `false`). A silent failure of ssh-keygen is silence too, so silence is a verdict
   * only when git's own format says the commit is unsigned (`%G?` = N).
   */
  private async isVerdict(commit: string, config: string[], r: { stderr: string; exitCode: number | null }): Promise<boolean> {
    if (r.exitCode === null) return false;
    if (/^No principal matched\.$/m.test(r.stderr) && !/^(?:fatal|error):/m.test(r.stderr)) return true;
    if (r.exitCode === 128 && /^fatal: bad\/incompatible signature/m.test(r.stderr)) return true;
    if (r.stderr.trim() !== '') return false;
    try {
      const { stdout } = await this.signatureGit([...config, 'log', '-1', '--no-walk', '--format=%G?', '--end-of-options', commit]);
      return stdout.trim() === 'N';
    } catch {
      return false;
    }
  }

  /** A private copy of the allowed-signers bytes whose digest is `digest` (written once). */
  private async signersCopy(digest: string, bytes: Buffer): Promise<string> {
    this.signersDir ??= mkdtemp(join(tmpdir(), 'ct-allowed-signers-'));
    const path = join(await this.signersDir, digest);
    if (!existsSync(path)) {
      const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      await writeFile(tmp, bytes, { mode: 0o600 });
      await rename(tmp, path);
    }
    return path;
  }

  /** git for a signature question: bounded in time, killed outright, never prompting. */
  private signatureGit(args: string[]): Promise<{ stdout: string }> {
    return run('git', ['--git-dir', this.dir, ...args], { timeout: 30_000, killSignal: 'SIGKILL', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  }

  private async runVerify(commit: string, config: string[]): Promise<{ ok: true } | { ok: false; reason: string; stderr: string; exitCode: number | null }> {
    try {
      // SSH signatures only: a GPG or x509 signature by any key in the service's keyring must not pass.
      await this.signatureGit([...config, 'verify-commit', commit]);
      return { ok: true };
    } catch (e) {
      const err = e as { code?: unknown; killed?: boolean; stderr?: string };
      const stderr = err.stderr ?? '';
      // A timeout, a kill or a failure to start has no exit code of git's own.
      const exitCode = typeof err.code === 'number' && !err.killed ? err.code : null;
      return { ok: false, reason: stderr.trim().slice(0, 300) || 'no signature', stderr, exitCode };
    }
  }
}

/** Sets `key` in a map kept to MAX_REMEMBERED entries (the oldest go first). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value!);
}

/** The git directory of a repository on this machine (bare, or a work tree's .git), or undefined. */
export function localGitDir(remote: string): string | undefined {
  if (!isAbsolute(remote)) return undefined;
  for (const d of [remote, join(remote, '.git')]) {
    if (existsSync(join(d, 'HEAD')) && existsSync(join(d, 'objects')) && existsSync(join(d, 'refs'))) return d;
  }
  return undefined;
}

/** A ref's object id from the loose ref file, else from packed-refs; undefined when absent. */
export function readRef(gitDir: string, ref: string): string | undefined {
  try {
    const loose = readFileSync(join(gitDir, ref), 'utf8').trim();
    if (/^[0-9a-f]{40,64}$/.test(loose)) return loose;
  } catch {
    // not a loose ref: look in packed-refs
  }
  let packed: string;
  try {
    packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8');
  } catch {
    return undefined;
  }
  for (const line of packed.split('\n')) {
    const m = /^([0-9a-f]{40,64}) (\S+)$/.exec(line);
    if (m && m[2] === ref) return m[1];
  }
  return undefined;
}
