/**
 * A repository's state behind the GitHub API stand-in (github-api.ts), for the operations
 * promotion uses: refs, contents (blob sha checked on write: 409 when the file changed, as GitHub
 * does), pull requests, commit statuses. Requests still pass the stand-in's OpenAPI validation
 * first; this only answers them. Git objects are modelled as snapshots (commit → files).
 */
import { createHash } from 'node:crypto';
import type { GitHubApi, RecordedRequest } from './github-api.js';

export interface Pull {
  number: number; head: string; base: string; title: string; body: string; state: 'open' | 'closed'; merged: boolean;
  /** The head when it was closed (GitHub stops following the branch then). */ closedHead?: string;
  /** A pull request from a fork: the fork (whose branches this repository does not hold) and its head commit. */ fork?: { owner: string; name: string; id: number; sha: string };
}
export interface Status { sha: string; state: string; context: string; description: string; target_url?: string }

export function blobSha(text: string): string {
  const b = Buffer.from(text);
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

export class FakeRepo {
  readonly commits = new Map<string, { files: Map<string, string>; parent?: string; message: string }>();
  readonly branches = new Map<string, string>();
  readonly pulls: Pull[] = [];
  readonly statuses: Status[] = [];
  /** Called before a contents write is applied: lets a test change the file "meanwhile". */
  beforeWrite?: (branch: string, path: string) => void;
  private n = 0;

  constructor(readonly owner: string, readonly name: string, files: Record<string, string>, readonly defaultBranch = 'main') {
    this.branches.set(defaultBranch, this.commit(undefined, new Map(Object.entries(files)), 'initial'));
  }

  commit(parent: string | undefined, files: Map<string, string>, message: string): string {
    const sha = createHash('sha1').update(`${parent ?? ''}|${message}|${++this.n}|${[...files].map(([k, v]) => `${k}=${v}`).join('\n')}`).digest('hex');
    this.commits.set(sha, { files, parent, message });
    return sha;
  }

  file(branch: string, path: string): string | undefined {
    return this.commits.get(this.branches.get(branch)!)?.files.get(path);
  }

  /** Someone (not the promotion) commits to a branch. */
  push(branch: string, path: string, text: string, message = 'someone else'): string {
    const head = this.branches.get(branch)!;
    const files = new Map(this.commits.get(head)!.files);
    files.set(path, text);
    const sha = this.commit(head, files, message);
    this.branches.set(branch, sha);
    return sha;
  }

  /** Merges a pull request (fast-forward of its files onto the base), returns the new base head. */
  merge(number: number): string {
    const p = this.pulls.find((x) => x.number === number)!;
    const head = this.commits.get(this.branches.get(p.head)!)!;
    const sha = this.commit(this.branches.get(p.base), new Map(head.files), `Merge pull request #${number}`);
    this.branches.set(p.base, sha);
    Object.assign(p, { state: 'closed', merged: true, closedHead: this.branches.get(p.head) });
    return sha;
  }

  /** Closes a pull request without merging it; its branch stays. */
  close(number: number): void {
    const p = this.pulls.find((x) => x.number === number)!;
    Object.assign(p, { state: 'closed', closedHead: this.branches.get(p.head) });
  }

  /** This repository's id, as GitHub's `repo.id` (a fork has another). */
  readonly id = 1296269;

  private pullJson(p: Pull) {
    const repo = { id: this.id, name: this.name, full_name: `${this.owner}/${this.name}`, owner: { login: this.owner } };
    const headRepo = p.fork ? { id: p.fork.id, name: p.fork.name, full_name: `${p.fork.owner}/${p.fork.name}`, owner: { login: p.fork.owner }, fork: true } : repo;
    return {
      number: p.number, html_url: `https://github.example/${this.owner}/${this.name}/pull/${p.number}`, title: p.title, body: p.body, state: p.state,
      head: { ref: p.head, label: `${headRepo.owner.login}:${p.head}`, sha: p.closedHead ?? p.fork?.sha ?? this.branches.get(p.head), repo: headRepo },
      base: { ref: p.base, label: `${this.owner}:${p.base}`, repo },
    };
  }

  attach(api: GitHubApi): void {
    const ours = (r: RecordedRequest) => r.params.owner === this.owner && r.params.repo === this.name;
    const nf = { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
    api.respond('repos/get', (r) => (ours(r) ? { status: 200, body: { name: this.name, full_name: `${this.owner}/${this.name}`, default_branch: this.defaultBranch } } : nf));
    api.respond('git/get-ref', (r) => {
      const sha = this.branches.get(r.params.ref.replace(/^heads\//, ''));
      return ours(r) && sha ? { status: 200, body: { ref: `refs/${r.params.ref}`, object: { sha, type: 'commit' } } } : nf;
    });
    api.respond('git/create-ref', (r) => {
      const name = String(r.body.ref).replace(/^refs\/heads\//, '');
      if (this.branches.has(name)) return { status: 422, body: { message: 'Reference already exists' } };
      if (!this.commits.has(r.body.sha)) return { status: 422, body: { message: 'Object does not exist' } };
      this.branches.set(name, r.body.sha);
      return { status: 201, body: { ref: r.body.ref, object: { sha: r.body.sha, type: 'commit' } } };
    });
    api.respond('git/update-ref', (r) => {
      const name = r.params.ref.replace(/^heads\//, '');
      const now = this.branches.get(name);
      if (!ours(r) || !now) return { status: 422, body: { message: 'Reference does not exist' } };
      if (!this.commits.has(r.body.sha)) return { status: 422, body: { message: 'Object does not exist' } };
      // Without force, only a fast-forward (the current head an ancestor of the new one), as GitHub.
      if (!r.body.force) {
        let c: string | undefined = r.body.sha;
        while (c && c !== now) c = this.commits.get(c)?.parent;
        if (c !== now) return { status: 422, body: { message: 'Update is not a fast forward' } };
      }
      this.branches.set(name, r.body.sha);
      return { status: 200, body: { ref: `refs/heads/${name}`, object: { sha: r.body.sha, type: 'commit' } } };
    });
    api.respond('repos/get-content', (r) => {
      const ref = r.query.ref ?? this.defaultBranch;
      const sha = this.branches.get(ref) ?? ref;
      const text = this.commits.get(sha)?.files.get(r.params.path);
      if (text === undefined) return nf;
      return { status: 200, body: { type: 'file', encoding: 'base64', name: r.params.path.split('/').pop(), path: r.params.path, sha: blobSha(text), size: Buffer.byteLength(text), content: Buffer.from(text).toString('base64') } };
    });
    api.respond('repos/create-or-update-file-contents', (r) => {
      const { branch, sha, content, message } = r.body as { branch: string; sha?: string; content: string; message: string };
      this.beforeWrite?.(branch, r.params.path);
      const now = this.file(branch, r.params.path);
      if (now !== undefined && sha !== blobSha(now)) return { status: 409, body: { message: `${r.params.path} does not match ${sha}` } };
      const commit = this.push(branch, r.params.path, Buffer.from(content, 'base64').toString('utf8'), message);
      return { status: 200, body: { content: { sha: blobSha(this.file(branch, r.params.path)!) }, commit: { sha: commit } } };
    });
    api.respond('pulls/list', (r) => {
      // `head` is `user-or-organisation:branch`: it matches the head's owner, not its repository.
      const [headOwner, head] = r.query.head?.split(':') ?? [];
      const list = this.pulls.filter((p) => [p.state, 'all'].includes(r.query.state ?? 'open') && (!head || (p.head === head && (p.fork?.owner ?? this.owner) === headOwner)) && (!r.query.base || p.base === r.query.base))
        .sort((a, b) => b.number - a.number); // newest first: GitHub's default sort=created, direction=desc
      // Pages as GitHub answers them: per_page (30 unless given, at most 100), page, a Link header.
      const size = Math.min(Number(r.query.per_page ?? 30), 100);
      const page = Number(r.query.page ?? 1);
      const pages = Math.max(1, Math.ceil(list.length / size));
      const at = (n: number) => { const q = new URLSearchParams({ ...r.query, per_page: String(size), page: String(n) }); return `<http://${r.headers.host}${r.path}?${q}>`; };
      const link = [...(page < pages ? [`${at(page + 1)}; rel="next"`, `${at(pages)}; rel="last"`] : []), ...(page > 1 ? [`${at(1)}; rel="first"`, `${at(page - 1)}; rel="prev"`] : [])].join(', ');
      return { status: 200, body: list.slice((page - 1) * size, page * size).map((p) => this.pullJson(p)), ...(link ? { headers: { link } } : {}) };
    });
    api.respond('pulls/create', (r) => {
      // As GitHub: one open pull request per head and base (a promotion that lost a race meets this).
      if (this.pulls.some((x) => x.state === 'open' && !x.fork && x.head === r.body.head && x.base === r.body.base)) {
        return { status: 422, body: { message: 'Validation Failed', errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${this.owner}:${r.body.head}.` }] } };
      }
      const p: Pull = { number: this.pulls.length + 1, head: r.body.head, base: r.body.base, title: r.body.title, body: r.body.body ?? '', state: 'open', merged: false };
      this.pulls.push(p);
      return { status: 201, body: this.pullJson(p) };
    });
    api.respond('pulls/update', (r) => {
      const p = this.pulls.find((x) => x.number === Number(r.params.pull_number));
      if (!p) return nf;
      if (r.body.title !== undefined) p.title = r.body.title;
      if (r.body.body !== undefined) p.body = r.body.body;
      return { status: 200, body: this.pullJson(p) };
    });
    api.respond('repos/list-commit-statuses-for-ref', (r) => ({ status: 200, body: this.statuses.filter((s) => s.sha === r.params.ref).reverse() }));
    api.respond('repos/create-commit-status', (r) => {
      const s: Status = { sha: r.params.sha, state: r.body.state, context: r.body.context ?? 'default', description: r.body.description ?? '', ...(r.body.target_url ? { target_url: r.body.target_url } : {}) };
      this.statuses.push(s);
      return { status: 201, body: { ...s, id: this.statuses.length } };
    });
  }
}
