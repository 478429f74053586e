import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CtError } from '../../src/core/errors.js';

/** One git object as `git cat-file --batch` prints it. */
export interface GitObject {
  oid: string;
  type: 'blob' | 'tree' | 'commit' | 'tag';
  data: Buffer;
}

export interface TreeEntry {
  mode: string;
  name: string;
  oid: string;
}

/** Largest object read (a desired-state file, a tree): bigger ones are refused, not buffered. */
export const MAX_OBJECT_BYTES = 16 * 1024 * 1024;

/**
 * An object over the limit its read was given (or MAX_OBJECT_BYTES): refused from the size in
 * git's header, before any of its content is buffered. `size` lets a caller say how large it is.
 */
export class ObjectTooLarge extends CtError {
  constructor(readonly oid: string, readonly size: number, readonly limit: number) {
    super('MANIFEST_INVALID', `git object ${oid} is ${size} bytes (limit ${limit})`, { oid, size, limit });
  }
}

interface Pending {
  name: string;
  maxBytes: number;
  /** Who asked (restart(why, owner) abandons only that owner's reads); undefined: nobody in particular. */
  owner: object | undefined;
  resolve(o: GitObject | null): void;
  reject(e: Error): void;
}

/** The object whose content is being received: its chunks are kept as they come and joined once. */
interface Body {
  oid: string;
  type: GitObject['type'];
  size: number;
  parts: Buffer[];
  have: number;
}

/** Longest answer header (`<id> <type> <size>`, or `<name> missing`): more without a newline is out of step. */
const MAX_HEADER_BYTES = 4096 + 128;

/**
 * A long-lived `git cat-file --batch` over a bare repository: reading a commit's desired state
 * costs no process start per file (a reconcile used to spawn one `git show` per file and an
 * `ls-tree`, most of webhook → status latency). Requests are answered in order; the process is
 * restarted after a failure and killed by `close()`. Names come from the server (commit ids it
 * resolved, paths from trees it read), never from a webhook: a newline in a name is refused.
 */
/** A regular file under a tree: its path relative to the tree, its own name, its blob id. */
interface TreeFile {
  path: string;
  name: string;
  oid: string;
}

/** Files remembered across tree listings (each a few dozen bytes): two commits of a 100,000-file state. */
const MAX_LISTED_FILES = 200_000;

export class GitObjectReader {
  private readonly listings = new Map<string, TreeFile[]>();
  private listedFiles = 0;
  private child: ChildProcessWithoutNullStreams | undefined;
  private queue: Pending[] = [];
  /** Received bytes not yet parsed, between objects' contents (headers: short). */
  private buf: Buffer = Buffer.alloc(0);
  /** The content being received, when a header announced one. */
  private body: Body | undefined;
  private closed = false;

  constructor(private readonly gitDir: string) {}

  /**
   * The object `name` (an id, `<rev>:<path>`, `<ref>^{commit}`), or null when it does not exist.
   * One larger than `maxBytes` (at most MAX_OBJECT_BYTES) is refused with ObjectTooLarge.
   * `owner`: a token restart() can abandon this read by, leaving other callers' reads answered.
   */
  read(name: string, maxBytes = MAX_OBJECT_BYTES, owner?: object): Promise<GitObject | null> {
    if (this.closed) return Promise.reject(new CtError('IO_ERROR', 'git object reader is closed'));
    if (/[\n\r\0]/.test(name) || name.length > 4096) return Promise.reject(new CtError('USAGE', 'invalid git object name'));
    const child = this.process();
    if (this.queue.length === 0) this.hold(child, true);
    return new Promise((resolve, reject) => {
      this.queue.push({ name, maxBytes: Math.min(maxBytes, MAX_OBJECT_BYTES), owner, resolve, reject });
      child.stdin.write(`${name}\n`);
    });
  }

  /** The entries of a tree object. */
  async tree(name: string): Promise<TreeEntry[] | null> {
    const o = await this.read(name);
    if (!o) return null;
    if (o.type !== 'tree') throw new CtError('IO_ERROR', `${name} is a ${o.type}, not a tree`);
    return parseTree(o.data);
  }

  /**
   * Blobs under `path` of `commit` (recursively), with their ids: files whose id did not change
   * between two commits need not be read or parsed again.
   */
  async listBlobs(commit: string, path: string, want: (name: string) => boolean, max = 100_000): Promise<{ path: string; oid: string }[]> {
    const clean = path.replace(/^\.?\/*|\/+$/g, '');
    const root = await this.read(clean ? `${commit}:${clean}` : `${commit}^{tree}`);
    if (!root) return [];
    if (root.type === 'blob') return want(clean) ? [{ path: clean, oid: root.oid }] : [];
    const out: { path: string; oid: string }[] = [];
    for (const f of await this.filesOf(root.oid, max)) {
      if (!want(f.name)) continue;
      out.push({ path: clean ? `${clean}/${f.path}` : f.path, oid: f.oid });
      if (out.length > max) throw new CtError('MANIFEST_INVALID', `more than ${max} files under ${clean || '.'}`);
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /**
   * Every regular file under a tree (paths relative to it), remembered by the tree's id: a tree's
   * content never changes, and a commit that changes one file of a large desired state leaves
   * most subtrees as they were (#14 target 7: one environment's directory re-listed, not all).
   */
  private async filesOf(treeOid: string, max: number): Promise<TreeFile[]> {
    const hit = this.listings.get(treeOid);
    if (hit) return hit;
    const files: TreeFile[] = [];
    const entries = (await this.tree(treeOid)) ?? [];
    // Names are bytes in git and text here: two that decode alike (not UTF-8) would be one path,
    // and which of their files counted would depend on the order they were met. Refused.
    if (new Set(entries.map((e) => e.name)).size !== entries.length) throw new CtError('MANIFEST_INVALID', `tree ${treeOid} holds two entries whose names read alike (names that are not UTF-8)`);
    for (const e of entries) {
      if (e.mode === '40000') for (const f of await this.filesOf(e.oid, max)) files.push({ path: `${e.name}/${f.path}`, name: f.name, oid: f.oid });
      else if (e.mode === '100644' || e.mode === '100755') files.push({ path: e.name, name: e.name, oid: e.oid });
      if (files.length > max) throw new CtError('MANIFEST_INVALID', `more than ${max} files under tree ${treeOid}`);
    }
    this.listedFiles += files.length;
    this.listings.set(treeOid, files);
    // Bounded by the files remembered: the oldest listings go first.
    while (this.listedFiles > MAX_LISTED_FILES && this.listings.size > 1) {
      const [oldest, list] = this.listings.entries().next().value as [string, TreeFile[]];
      this.listings.delete(oldest);
      this.listedFiles -= list.length;
    }
    return files;
  }

  close(): void {
    this.closed = true;
    this.fail(new CtError('IO_ERROR', 'git object reader closed'));
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  /**
   * Abandons the reads waiting for `owner` (rejected with `why`; all of them when no owner is
   * given) and the process answering them: a caller that has seen enough stops git from streaming
   * the rest. Other callers' reads are asked again of a new process, in their order: one caller
   * giving up (the reconciler, on a desired state over its limit) never fails another's (the
   * promoter reading the applied state).
   */
  restart(why: string, owner?: object): void {
    const mine = this.queue.filter((p) => owner === undefined || p.owner === owner);
    if (mine.length === 0) return;
    const others = this.queue.filter((p) => !mine.includes(p));
    this.queue = mine;
    this.fail(new CtError('IO_ERROR', `git object read abandoned: ${why}`));
    this.resend(others);
  }

  /** Kills the process (its output is dropped) and asks `reads` again of a new one. */
  private resend(reads: Pending[]): void {
    const child = this.child;
    this.child = undefined;
    this.buf = Buffer.alloc(0);
    this.body = undefined;
    child?.kill('SIGKILL');
    this.queue = reads;
    if (reads.length === 0 || this.closed) return;
    const next = this.process();
    this.hold(next, true);
    for (const p of reads) next.stdin.write(`${p.name}\n`);
  }

  private process(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn('git', ['--git-dir', this.gitDir, 'cat-file', '--batch'], {
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => {
      // Output still buffered from a process given up by restart() belongs to no read.
      if (this.child !== child) return;
      // An object's content is kept chunk by chunk and joined once when complete: joining at
      // every chunk copied a 16 MiB object thousands of times.
      if (this.body) {
        this.body.parts.push(d);
        this.body.have += d.length;
      } else this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.drain();
    });
    child.stderr.resume();
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.buf = Buffer.alloc(0);
      this.body = undefined;
      this.fail(new CtError('IO_ERROR', `git cat-file ${why}`));
    };
    child.on('error', (e) => gone(`failed: ${e.message}`));
    child.on('exit', (code) => gone(`exited (${code})`));
    child.stdin.on('error', () => undefined);
    this.hold(child, false);
    this.child = child;
    return child;
  }

  /**
   * Keeps the event loop alive while answers are awaited, and only then: an idle reader never
   * keeps the process (or a test run) from exiting; close() ends it for good.
   */
  private hold(child: ChildProcessWithoutNullStreams, on: boolean): void {
    for (const h of [child, child.stdin, child.stdout, child.stderr] as unknown as { ref?: () => void; unref?: () => void }[]) {
      if (on) h.ref?.();
      else h.unref?.();
    }
  }

  private fail(e: Error): void {
    const q = this.queue;
    this.queue = [];
    for (const p of q) p.reject(e);
  }

  /** Parses as many complete answers as have been received, in request order. */
  private drain(): void {
    while (this.queue.length) {
      if (!this.body) {
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) {
          // Out of step with git: nothing after this can be trusted; restart on the next read.
          if (this.buf.length > MAX_HEADER_BYTES) this.child?.kill('SIGKILL');
          return;
        }
        const header = this.buf.subarray(0, nl).toString('utf8');
        if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
          this.buf = this.buf.subarray(nl + 1);
          this.queue.shift()!.resolve(null);
          continue;
        }
        const m = /^([0-9a-f]{40,64}) (blob|tree|commit|tag) (\d+)$/.exec(header);
        if (!m) {
          this.child?.kill('SIGKILL');
          return;
        }
        const size = Number(m[3]);
        const { maxBytes } = this.queue[0];
        if (size > maxBytes) {
          // Killing git is cheaper than reading past up to 16 MiB (or more) to the next answer;
          // the reads behind this one are asked again.
          this.queue.shift()!.reject(new ObjectTooLarge(m[1], size, maxBytes));
          this.resend(this.queue);
          return;
        }
        const rest = this.buf.subarray(nl + 1);
        this.buf = Buffer.alloc(0);
        this.body = { oid: m[1], type: m[2] as GitObject['type'], size, parts: rest.length ? [rest] : [], have: rest.length };
      }
      const body = this.body;
      // The content and the newline after it.
      if (body.have < body.size + 1) return;
      const data = Buffer.concat(body.parts, body.size);
      let skip = body.size + 1;
      const after: Buffer[] = [];
      for (const p of body.parts) {
        if (skip >= p.length) skip -= p.length;
        else {
          after.push(skip ? p.subarray(skip) : p);
          skip = 0;
        }
      }
      this.body = undefined;
      this.buf = after.length === 0 ? Buffer.alloc(0) : after.length === 1 ? after[0] : Buffer.concat(after);
      this.queue.shift()!.resolve({ oid: body.oid, type: body.type, data });
    }
    if (this.queue.length === 0 && this.child) this.hold(this.child, false);
  }
}

/** Tree object body: `<mode> <name>\0<binary id>` repeated (id length from the repository's hash). */
export function parseTree(data: Buffer, idBytes = 20): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const nul = data.indexOf(0x00, sp + 1);
    if (sp < 0 || nul < 0 || nul + 1 + idBytes > data.length) throw new CtError('IO_ERROR', 'malformed git tree object');
    out.push({ mode: data.subarray(i, sp).toString('ascii'), name: data.subarray(sp + 1, nul).toString('utf8'), oid: data.subarray(nul + 1, nul + 1 + idBytes).toString('hex') });
    i = nul + 1 + idBytes;
  }
  return out;
}
