import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { GitMirror } from './git.js';
import { MAX_DESIRED_STATE_BYTES, MAX_DESIRED_STATE_TOTAL_BYTES, fileTooLarge, parseDesiredFiles, stateTooLarge, type DesiredApp } from './desired-state.js';
import { ObjectTooLarge, type GitObject } from './object-reader.js';
import { mergeRules, type PromotionRule } from '../promotion/rules.js';
import { CtError } from '../../src/core/errors.js';
import { parseCommitInfo, type CommitInfo } from './commit-info.js';
import { diffTrees } from './tree-diff.js';

/** Parsed files kept per generation (so at most twice this): every file of a large repository at two commits. */
const MAX_CACHED_BLOBS = 20_000;
/** Most desired-state files at one commit (as GitObjectReader.listBlobs allows). */
const MAX_FILES = 100_000;
const WANTED = (n: string) => /\.ya?ml$/.test(n);

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
  private readonly parsed = new Map<string, Snapshot>();
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
    return (await this.snapshotAt(commit)).state;
  }

  /**
   * The desired state at a commit with its bookkeeping. `base`: a commit whose state, when still
   * remembered, the new one is derived from by the files that differ between the two (#14 target 7).
   */
  private async snapshotAt(commit: string, base?: string | null): Promise<Snapshot> {
    // A commit's content never changes: the previous head's state, parsed by the last reconcile,
    // is reused instead of read from git again (a few recent commits are kept).
    const hit = this.parsed.get(commit);
    if (hit) return hit;
    if (this.refusedHead?.commit === commit) throw this.refusedHead.error;
    const from = base ? this.parsed.get(base) : undefined;
    const read = from ? this.readChanged(commit, base!, from) : this.readDesired(commit);
    const snap = await read.catch((e: unknown) => {
      if (isContentError(e)) this.refusedHead = { commit, error: e };
      throw e;
    });
    this.parsed.set(commit, snap);
    if (this.parsed.size > 8) this.parsed.delete(this.parsed.keys().next().value!);
    return snap;
  }

  /**
   * The state at `commit` from the remembered state at `base`: only the files that differ between
   * the two trees are read and parsed, the others' apps are kept. Sizes are counted over every
   * file of the commit as readDesired counts them (the unchanged files' sizes are remembered). A
   * name declared twice, or too many files, is decided by reading the whole state (readDesired),
   * so the error names the same files; a root that is not a directory is read whole too.
   */
  private async readChanged(commit: string, baseCommit: string, base: Snapshot): Promise<Snapshot> {
    const root = await this.rootTree(commit);
    if (base.root === null || root === null) return this.readDesired(commit, root);
    // Each state has at most MAX_FILES files, so at most twice that differ (more: read it whole, and refuse it).
    const diff = await diffTrees(this.mirror.reader, base.root || undefined, root || undefined, 2 * MAX_FILES);
    if (!diff) return this.readDesired(commit, root);
    // Every regular file counts towards MAX_FILES, as the whole read counts them, YAML or not.
    const allFiles = base.allFiles + diff.reduce((n, c) => n + (c.after && !c.before ? 1 : !c.after && c.before ? -1 : 0), 0);
    if (allFiles > MAX_FILES) return this.readDesired(commit, root);
    const changes = diff.filter((c) => WANTED(c.name));
    const prefix = cleanPath(this.opts.path) ? `${cleanPath(this.opts.path)}/` : '';
    const files = new Map(base.files);
    const byKey = new Map(base.byKey);
    let bytes = base.bytes;
    let rules = false;
    const touched = new Set<string>();
    const added: { path: string; oid: string }[] = [];
    for (const c of changes) {
      const path = prefix + c.path;
      const old = files.get(path);
      if (old) {
        files.delete(path);
        bytes -= old.file.bytes;
        rules ||= old.file.state.promotions.length > 0;
        for (const a of old.file.state.apps) byKey.delete(appKey(a));
      }
      if (c.after) added.push({ path, oid: c.after });
    }
    if (files.size + added.length > MAX_FILES) return await this.readDesired(commit, root);
    const cached = added.map((b) => this.cachedBlob(blobKey(b)));
    const cachedBytes = cached.reduce((n, c) => n + (c?.bytes ?? 0), 0);
    const texts = await this.readBlobs(added.filter((_b, i) => !cached[i]), bytes + cachedBytes, files.size + added.length);
    for (const [i, b] of added.entries()) {
      const file = cached[i] ?? this.parseBlob(b, texts.get(b.oid)!);
      for (const a of file.state.apps) {
        if (byKey.has(appKey(a))) return await this.readDesired(commit, root);
        touched.add(appKey(a));
        byKey.set(appKey(a), a);
      }
      rules ||= file.state.promotions.length > 0;
      files.set(b.path, { oid: b.oid, file });
      bytes += file.bytes;
    }
    const promotions = rules ? mergeRules([...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, f]) => f.file.state.promotions)) : base.state.promotions;
    return snapshot(root, files, byKey, bytes, allFiles, promotions, { commit: baseCommit, byKey: base.byKey, touched });
  }

  /** The id of the tree at the configured path of `commit`: '' when there is none, null when it is a file. */
  private async rootTree(commit: string): Promise<string | null> {
    const clean = cleanPath(this.opts.path);
    const o = await this.mirror.reader.read(clean ? `${commit}:${clean}` : `${commit}^{tree}`);
    return !o ? '' : o.type === 'tree' ? o.oid : null;
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
  private async readDesired(commit: string, root?: string | null): Promise<Snapshot> {
    const tree = root === undefined ? await this.rootTree(commit) : root;
    // Every regular file, counted (the incremental read keeps the count); the YAML ones read.
    const every = await this.mirror.reader.listBlobs(commit, this.opts.path, () => true);
    const blobs = every.filter((b) => WANTED(b.path.slice(b.path.lastIndexOf('/') + 1)));
    // Cached files are taken at once; only the others are read (a promise per file of thousands cost more than the rest).
    const cached = blobs.map((b) => this.cachedBlob(blobKey(b)));
    const cachedBytes = cached.reduce((n, c) => n + (c?.bytes ?? 0), 0);
    const texts = await this.readBlobs(blobs.filter((_b, i) => !cached[i]), cachedBytes, blobs.length);
    const perFile = blobs.map((b, i) => cached[i] ?? this.parseBlob(b, texts.get(b.oid)!));
    const seen = new Map<string, string>();
    const byKey = new Map<string, DesiredApp>();
    const files = new Map<string, { oid: string; file: ParsedFile }>();
    let bytes = 0;
    for (const [i, file] of perFile.entries()) {
      for (const a of file.state.apps) {
        const key = appKey(a);
        const other = seen.get(key);
        if (other !== undefined) throw new CtError('MANIFEST_INVALID', `${blobs[i].path}: environments.${a.environment}.apps.${a.app}: declared twice (also in ${other})`, { file: blobs[i].path });
        seen.set(key, blobs[i].path);
        byKey.set(key, a);
      }
      files.set(blobs[i].path, { oid: blobs[i].oid, file });
      bytes += file.bytes;
    }
    return snapshot(tree, files, byKey, bytes, every.length, mergeRules(perFile.map((f) => f.state.promotions)));
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
  private parseBlob(b: { path: string; oid: string }, data: Buffer): ParsedFile {
    const file = { state: parseDesiredFiles([{ name: b.path, text: data.toString('utf8') }]), bytes: data.length };
    this.remember(blobKey(b), file);
    return file;
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

  /**
   * The apps of `snap` whose deploy differs from the one at `previous` (all of them before the
   * first commit), by name. A state derived from `previous` compares only the apps declared in the
   * files that differ; any other compares every app.
   */
  private async changedSince(snap: Snapshot, previous: string | null): Promise<DesiredApp[]> {
    // A removed name deploys nothing, so the names declared in the files now there are enough.
    const from = snap.from?.commit === previous ? snap.from : undefined;
    const before = from?.byKey ?? (previous ? await this.snapshotAt(previous).then((s) => s.byKey, () => new Map<string, DesiredApp>()) : new Map<string, DesiredApp>());
    const candidates = from ? [...from.touched].flatMap((k) => snap.byKey.get(k) ?? []) : snap.state.apps;
    // A different reference (even to the same image digest) or a different host selector is a change.
    const changed = candidates.filter((a) => {
      const b = before.get(appKey(a));
      return !b || deployKey(b) !== deployKey(a);
    });
    return from ? changed.sort(byName) : changed;
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
    const read = await this.snapshotAt(head, previous).then((snap) => ({ snap }), (error: Error) => ({ error }));
    if ('error' in read) {
      // git failing (a blob it cannot read, a timeout) says nothing of the commit: an error, tried
      // again, not a refusal (which posts a failure status on the commit that nothing replaces).
      if (!isContentError(read.error)) throw read.error;
      const code = read.error instanceof CtError ? { code: read.error.code } : {};
      return { outcome: 'refused', commit: head, previous, reason: 'INVALID_STATE', message: read.error.message, ...code };
    }
    const changed = await this.changedSince(read.snap, previous);
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

/**
 * A commit's desired state with what deriving the next one needs: its files by path, its apps by
 * name, their total size, the id of the tree read ('' none, null: the path is a file) and, when it
 * was derived from another commit's, that commit, its apps and the names declared in this commit's
 * versions of the files that differ.
 */
interface Snapshot {
  state: DesiredState;
  root: string | null;
  files: ReadonlyMap<string, { oid: string; file: ParsedFile }>;
  byKey: ReadonlyMap<string, DesiredApp>;
  bytes: number;
  /** Regular files under the root, of any name: what MAX_FILES bounds. */
  allFiles: number;
  from?: { commit: string; byKey: ReadonlyMap<string, DesiredApp>; touched: ReadonlySet<string> };
}

function snapshot(root: string | null, files: Snapshot['files'], byKey: Snapshot['byKey'], bytes: number, allFiles: number, promotions: PromotionRule[], from?: Snapshot['from']): Snapshot {
  // The sorted list is built when asked for (the promoter, the API), not at every reconcile.
  let apps: DesiredApp[] | undefined;
  const state = { get apps() { return (apps ??= [...byKey.values()].sort(byName)); }, promotions };
  return { state, root, files, byKey, bytes, allFiles, ...(from ? { from } : {}) };
}

function appKey(a: DesiredApp): string {
  return `${a.environment}/${a.app}`;
}

function byName(a: DesiredApp, b: DesiredApp): number {
  return appKey(a).localeCompare(appKey(b));
}

function cleanPath(path: string): string {
  return path.replace(/^\.?\/*|\/+$/g, '');
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
