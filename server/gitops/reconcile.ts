import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { GitMirror } from './git.js';
import { MAX_DESIRED_STATE_BYTES, MAX_DESIRED_STATE_TOTAL_BYTES, fileTooLarge, parseDesiredFiles, stateTooLarge, type DesiredApp } from './desired-state.js';
import { ObjectTooLarge, type GitObject } from './object-reader.js';
import { mergeRules, type PromotionRule } from '../promotion/rules.js';
import { CtError } from '../../src/core/errors.js';
import { parseCommitInfo, type CommitInfo } from './commit-info.js';

/** Parsed files kept per generation (so at most twice this): every file of a large repository at two commits. */
const MAX_CACHED_BLOBS = 20_000;

export type ReconcileOutcome =
  | { outcome: 'up-to-date'; commit: string }
  | { outcome: 'applied'; commit: string; previous: string | null; deploys: DesiredApp[] }
  | { outcome: 'refused'; commit: string; previous: string | null; reason: 'NOT_DESCENDANT' | 'UNSIGNED_COMMIT' | 'INVALID_STATE'; message: string; code?: string }
  | { outcome: 'error'; message: string };

export interface ReconcilerOptions {
  branch: string;
  path: string;
  allowedSignersFile?: string;
  /** Enqueues one deploy; must be idempotent per (commit, environment, app). `info`: the commit's author and message. */
  enqueueDeploy(app: DesiredApp, commit: string, info?: CommitInfo): Promise<void>;
}

/**
 * One reconcile: load the last applied commit, fetch the branch head ourselves, refuse anything
 * that does not descend from what was applied (a replayed or forged trigger can never roll back),
 * optionally require an allowed signature, then enqueue the apps whose desired bundle changed.
 * Every run is recorded in `reconciles`, whatever its outcome.
 */
export class Reconciler {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly parsed = new Map<string, DesiredState>();
  /**
   * Parsed desired-state files by blob id and path (a parse error is thrown, never cached), in two
   * generations: a hit in the young one costs one lookup; a hit in the old one moves it to the young
   * one; when the young one is full it becomes the old one. Least-recently-used-like, without
   * re-inserting every file of a large state at every reconcile (#14 target 7).
   */
  private young = new Map<string, ParsedFile>();
  private old = new Map<string, ParsedFile>();
  /**
   * The branch head whose desired state was refused for its content, and why: a commit's content
   * never changes, so the 60 s poll answers again without reading or parsing it. Kept only while
   * that commit is the head (errors of git itself are not kept: the next poll tries again).
   */
  private refusedHead: { commit: string; error: CtError } | undefined;

  constructor(private readonly db: Db, private readonly mirror: GitMirror, private readonly opts: ReconcilerOptions) {}

  /** Reconciles are serialised: two triggers at once run one after the other. */
  reconcile(trigger: string): Promise<ReconcileOutcome> {
    const next = this.chain.then(() => this.once(trigger));
    this.chain = next.catch(() => undefined);
    return next;
  }

  async appliedCommit(): Promise<string | null> {
    const [row] = await this.db.query<{ applied_sha: string }>('SELECT applied_sha FROM gitops_state WHERE repo = ?', [this.mirror.remote]);
    return row?.applied_sha ?? null;
  }

  async desiredAt(commit: string): Promise<DesiredApp[]> {
    return (await this.stateAt(commit)).apps;
  }

  /** Apps and promotion rules at a commit. */
  async stateAt(commit: string): Promise<DesiredState> {
    // A commit's content never changes: the previous head's state, parsed by the last reconcile,
    // is reused instead of read from git again (a few recent commits are kept).
    const hit = this.parsed.get(commit);
    if (hit) return hit;
    if (this.refusedHead?.commit === commit) throw this.refusedHead.error;
    const state = await this.readDesired(commit).catch((e: unknown) => {
      if (isContentError(e)) this.refusedHead = { commit, error: e };
      throw e;
    });
    this.parsed.set(commit, state);
    if (this.parsed.size > 8) this.parsed.delete(this.parsed.keys().next().value!);
    return state;
  }

  /** The desired state in force: at the last applied commit (empty before the first). */
  async appliedState(): Promise<DesiredState> {
    const commit = await this.appliedCommit();
    return commit ? this.stateAt(commit) : { apps: [], promotions: [] };
  }

  /**
   * The desired state at a commit, incrementally: files are listed with their blob ids (read in
   * process from git's trees) and each blob is parsed once, so a commit that changes one file of
   * thousands costs one read and one parse. Names must still be unique across files. Sizes are
   * checked before anything is parsed (readBlobs).
   */
  private async readDesired(commit: string): Promise<DesiredState> {
    const blobs = await this.mirror.reader.listBlobs(commit, this.opts.path, (n) => /\.ya?ml$/.test(n));
    // Cached files are taken at once; only the others are read (a promise per file of thousands cost more than the rest).
    const cached = blobs.map((b) => this.cachedBlob(blobKey(b)));
    const cachedBytes = cached.reduce((n, c) => n + (c?.bytes ?? 0), 0);
    const texts = await this.readBlobs(blobs.filter((_b, i) => !cached[i]), cachedBytes, blobs.length);
    const perFile = blobs.map((b, i) => cached[i]?.state ?? this.parseBlob(b, texts.get(b.oid)!));
    const seen = new Map<string, string>();
    const out: DesiredApp[] = [];
    for (const [i, { apps }] of perFile.entries()) {
      for (const a of apps) {
        const key = `${a.environment}/${a.app}`;
        const other = seen.get(key);
        if (other !== undefined) throw new CtError('MANIFEST_INVALID', `${blobs[i].path}: environments.${a.environment}.apps.${a.app}: declared twice (also in ${other})`, { file: blobs[i].path });
        seen.set(key, blobs[i].path);
        out.push(a);
      }
    }
    return { apps: out.sort((a, b) => `${a.environment}/${a.app}`.localeCompare(`${b.environment}/${b.app}`)), promotions: mergeRules(perFile.map((f) => f.promotions)) };
  }

  /**
   * The content of each distinct blob of `files` (those not cached), refused before any file is
   * parsed when one is over MAX_DESIRED_STATE_BYTES (git's header says so: nothing of it is read)
   * or when every file of the commit together, cached ones included (`counted`), is over
   * MAX_DESIRED_STATE_TOTAL_BYTES. A blob listed under N paths is read once but parsed N times,
   * so it counts N times. The total is the commit's, not this process's cache's: a commit is
   * accepted or refused the same way after a restart.
   */
  private async readBlobs(files: { path: string; oid: string }[], counted: number, fileCount: number): Promise<Map<string, Buffer>> {
    let total = counted;
    if (total > MAX_DESIRED_STATE_TOTAL_BYTES) throw stateTooLarge(total, fileCount);
    const paths = new Map<string, string[]>();
    for (const f of files) {
      const list = paths.get(f.oid);
      if (list) list.push(f.path);
      else paths.set(f.oid, [f.path]);
    }
    const reader = this.mirror.reader;
    // These reads are abandoned together when the commit is refused; other reads of the shared
    // reader (the promoter's appliedState(), another commit's) are left to finish.
    const owner = {};
    const texts = new Map<string, Buffer>();
    // The first refusal wins; reads answered after it (or abandoned because of it) are dropped.
    let refusal: CtError | undefined;
    const take = (oid: string, names: string[], obj: GitObject | null) => {
      if (refusal) return;
      if (!obj || obj.type !== 'blob') throw new CtError('IO_ERROR', `${names[0]}: blob ${oid} is missing`);
      total += obj.data.length * names.length;
      if (total > MAX_DESIRED_STATE_TOTAL_BYTES) {
        refusal = stateTooLarge(total, fileCount);
        reader.restart('the desired state is over its size limit', owner);
      } else texts.set(oid, obj.data);
    };
    const refuse = (names: string[], e: unknown) => {
      if (refusal) return;
      if (e instanceof ObjectTooLarge) {
        refusal = fileTooLarge(names[0], e.size);
        reader.restart('the desired state has a file over its size limit', owner);
      } else throw e;
    };
    const reads = [...paths].map(([oid, names]) => reader.read(oid, MAX_DESIRED_STATE_BYTES, owner).then((obj) => take(oid, names, obj), (e: unknown) => refuse(names, e)));
    const settled = await Promise.allSettled(reads);
    if (refusal) throw refusal;
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return texts;
  }

  /** One file's apps, by blob id (content-addressed, so a cached parse can never be stale). */
  private parseBlob(b: { path: string; oid: string }, data: Buffer): DesiredState {
    const state = parseDesiredFiles([{ name: b.path, text: data.toString('utf8') }]);
    this.remember(blobKey(b), { state, bytes: data.length });
    return state;
  }

  private cachedBlob(key: string): ParsedFile | undefined {
    const young = this.young.get(key);
    if (young) return young;
    const old = this.old.get(key);
    if (old) this.remember(key, old);
    return old;
  }

  private remember(key: string, state: ParsedFile): void {
    this.young.set(key, state);
    if (this.young.size >= MAX_CACHED_BLOBS) {
      this.old = this.young;
      this.young = new Map();
    }
  }

  /** The head's author and message, shown with its deploys; a commit that cannot be read has none. */
  private async commitInfo(commit: string): Promise<CommitInfo | undefined> {
    const o = await this.mirror.reader.read(commit).catch(() => null);
    return o?.type === 'commit' ? parseCommitInfo(o.data) : undefined;
  }

  private async once(trigger: string): Promise<ReconcileOutcome> {
    let result: ReconcileOutcome;
    const previous = await this.appliedCommit();
    try {
      const head = await this.mirror.fetch(this.opts.branch);
      result = await this.step(head, previous);
    } catch (e) {
      result = { outcome: 'error', message: (e as Error).message };
    }
    await this.db.run('INSERT INTO reconciles (id, repo, commit_sha, previous_sha, outcome, message, trigger, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      randomUUID(),
      this.mirror.remote,
      'commit' in result ? result.commit : null,
      previous,
      result.outcome === 'refused' ? `refused:${result.reason}` : result.outcome,
      'message' in result ? result.message : null,
      trigger,
      Date.now(),
    ]);
    return result;
  }

  private async step(head: string, previous: string | null): Promise<ReconcileOutcome> {
    if (head === previous) return { outcome: 'up-to-date', commit: head };
    if (this.refusedHead && this.refusedHead.commit !== head) this.refusedHead = undefined;
    // Ancestry and signature first, the head's content only after both passed: anyone who can push
    // to the branch chooses that content, and reading and parsing it is the costly part.
    if (previous && !(await this.mirror.isAncestor(previous, head))) {
      return { outcome: 'refused', commit: head, previous, reason: 'NOT_DESCENDANT', message: `${head} does not descend from the applied commit ${previous}` };
    }
    if (this.opts.allowedSignersFile) {
      const sig = await this.mirror.verifyCommit(head, this.opts.allowedSignersFile);
      if (!sig.ok) return { outcome: 'refused', commit: head, previous, reason: 'UNSIGNED_COMMIT', message: `commit ${head} is not signed by an allowed key: ${sig.reason}` };
    }
    const read = await this.stateAt(head).then((state) => ({ state }), (error: Error) => ({ error }));
    if ('error' in read) {
      const code = read.error instanceof CtError ? { code: read.error.code } : {};
      return { outcome: 'refused', commit: head, previous, reason: 'INVALID_STATE', message: read.error.message, ...code };
    }
    const desired = read.state.apps;
    const before = new Map<string, string>();
    if (previous) {
      for (const a of await this.desiredAt(previous).catch(() => [] as DesiredApp[])) before.set(`${a.environment}/${a.app}`, deployKey(a));
    }
    // A different reference (even to the same image digest) or a different host selector is a change.
    const changed = desired.filter((a) => before.get(`${a.environment}/${a.app}`) !== deployKey(a));
    const info = changed.length ? await this.commitInfo(head) : undefined;
    for (const app of changed) await this.opts.enqueueDeploy(app, head, info);
    // Recorded after the enqueues: a crash in between re-enqueues the same idempotent keys.
    await this.db.run(
      'INSERT INTO gitops_state (repo, applied_sha, applied_at) VALUES (?, ?, ?) ON CONFLICT (repo) DO UPDATE SET applied_sha = excluded.applied_sha, applied_at = excluded.applied_at',
      [this.mirror.remote, head, Date.now()],
    );
    return { outcome: 'applied', commit: head, previous, deploys: changed };
  }
}

export interface DesiredState {
  apps: DesiredApp[];
  promotions: PromotionRule[];
}

/** One file's parse, with its size: a commit's total is counted over cached files too. */
interface ParsedFile {
  state: DesiredState;
  bytes: number;
}

function blobKey(b: { path: string; oid: string }): string {
  return `${b.oid} ${b.path}`;
}

/** A refusal decided by a commit's content alone (so it is the same at every poll), not by git failing. */
function isContentError(e: unknown): e is CtError {
  return e instanceof CtError && (e.code === 'MANIFEST_INVALID' || e.code === 'DESIRED_STATE_TOO_LARGE');
}

/** What makes a desired app's deploy differ from the previous commit's: a change redeploys it. */
function deployKey(a: DesiredApp): string {
  return `${a.bundle} ${a.bundleDigest ?? ''} ${JSON.stringify(a.hosts)} ${JSON.stringify(a.ports ?? [])}${a.suspended ? ' suspended' : ''}`;
}
