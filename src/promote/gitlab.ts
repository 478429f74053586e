/**
 * The GitLab forge through the real Gitbeaker client: file edits carry `last_commit_id` (GitLab
 * refuses the edit when the file changed since), one merge request per source branch, commit
 * statuses. Rate limits and rejected tokens are handled as on GitHub (rate-limit.ts).
 */
import { Gitlab } from '@gitbeaker/rest';
import { CtError } from '../core/errors.js';
import type { ChangeRequest, CommitStatus, FileVersion, Forge, WriteOutcome } from './forge.js';
import { forgeHttp } from './forge-http.js';
import { forgeError, withRateLimit, type RetryOptions } from './rate-limit.js';

export interface GitlabForgeOptions extends RetryOptions {
  apiUrl?: string;
  /** Non-public addresses the API may resolve to (a self-managed GitLab on a private network, a test stand-in). */
  allowedAddresses?: string[];
  token: string;
  /** Project id or path (`group/project`) of the desired-state repository. */
  project: string;
}

/** Pages of 100 merge requests read at most when looking for ours. */
const MR_PAGES = 10;

type Mr = { iid: number; web_url: string; sha?: string | null; title: string; description?: string | null; source_project_id?: number; target_project_id?: number };

function statusOf(e: unknown): number | undefined {
  const s = (e as { cause?: { response?: { status?: number } } })?.cause?.response?.status;
  return typeof s === 'number' ? s : undefined;
}

export function gitlabForge(opts: GitlabForgeOptions): Forge {
  // Gitbeaker sends every request through this agent, whose one connector applies the URL guard.
  const http = forgeHttp({ allowedAddresses: opts.allowedAddresses });
  // A request that failed without an HTTP answer because the guard refused its connection.
  const fail = (what: string, e: unknown) => forgeError('gitlab', what, statusOf(e) === undefined ? (http.takeRefusal() ?? e) : e);
  const api = new Gitlab({ host: opts.apiUrl ?? 'https://gitlab.com', token: opts.token, agent: http.agent as never });
  const p = opts.project;
  const call = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await withRateLimit('gitlab', f, opts);
    } catch (e) {
      throw fail(what, e);
    }
  };
  const maybe = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withRateLimit('gitlab', f, opts);
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw fail(what, e);
    }
  };
  // The project's numeric id (opts.project may be its path), read once: merge requests name their
  // source and target projects by id.
  let projectId: number | undefined;
  const ownId = async (): Promise<number> => {
    if (projectId === undefined) {
      const id = (await call('read the project', () => api.Projects.show(p))).id;
      if (typeof id !== 'number') throw new CtError('PROMOTE_FORGE_ERROR', `GitLab answered no numeric id for project ${p}`, { project: p });
      projectId = id;
    }
    return projectId;
  };
  // GitLab lists a fork's merge requests under the project they target, and a fork may name its
  // branch ct-promote/<env>/<app> too: such a merge request is someone else's branch, and taking
  // it for ours would put the verified evidence and a success status on their commit (or reset our
  // branch to match their head). Only a merge request from this project into this project counts.
  const ours = async <T extends Mr>(list: T[]): Promise<T[]> => {
    const id = await ownId();
    return list.filter((m) => m.source_project_id === id && m.target_project_id === id);
  };
  // This project's merge requests from a branch, asked for by source project: GitLab lists them
  // newest first, and forks' merge requests from a branch of the same name (anyone may open any
  // number) would otherwise push ours off the page: our open one would be missed (and another
  // opened), our merged one too (and its branch reused with the old history). `source_project_id`
  // is a documented filter of GET /projects/:id/merge_requests; a GitLab that ignored it is still
  // paged through, up to MR_PAGES pages, and `ours` still keeps only this project's.
  const mergeRequests = async (query: { sourceBranch: string; targetBranch?: string; state?: 'opened' }): Promise<(Mr & { state?: string; source_branch?: string })[]> => {
    const sourceProjectId = await ownId();
    return (await call('list merge requests', () => api.MergeRequests.all({ projectId: p, ...query, sourceProjectId, perPage: 100, maxPages: MR_PAGES } as never))) as unknown as (Mr & { state?: string; source_branch?: string })[];
  };
  const toChange = (m: Mr): ChangeRequest => ({ number: m.iid, url: m.web_url, headSha: m.sha ?? '', title: m.title, body: m.description ?? '' });
  return {
    kind: 'gitlab',
    close: () => http.close(),
    defaultBranch: () => call('read the project', async () => {
      const project = await api.Projects.show(p);
      if (typeof project.id === 'number') projectId = project.id; // saves ownId() the same request
      return String(project.default_branch);
    }),
    branchHead: async (branch) => (await maybe(`read branch ${branch}`, () => api.Branches.show(p, branch)))?.commit.id as string | undefined,
    async createBranch(branch, sha) {
      try {
        await withRateLimit('gitlab', () => api.Branches.create(p, branch, sha), opts);
        return true;
      } catch (e) {
        if (statusOf(e) === 400 && /already exists/i.test(String((e as { cause?: { description?: string } }).cause?.description ?? (e as Error).message))) return false;
        throw fail(`create branch ${branch}`, e);
      }
    },
    // GitLab has no forced ref update: the branch is deleted and made again at the commit.
    async resetBranch(branch, sha) {
      await call(`delete branch ${branch}`, () => api.Branches.remove(p, branch));
      await call(`create branch ${branch}`, () => api.Branches.create(p, branch, sha));
    },
    async readFile(path, ref): Promise<FileVersion | undefined> {
      const f = await maybe(`read ${path} at ${ref}`, () => api.RepositoryFiles.show(p, path, ref));
      return f ? { text: Buffer.from(f.content, 'base64').toString('utf8'), version: f.last_commit_id } : undefined;
    },
    async writeFile(path, branch, text, version, message): Promise<WriteOutcome> {
      try {
        await withRateLimit('gitlab', () => api.RepositoryFiles.edit(p, path, branch, Buffer.from(text).toString('base64'), message, { encoding: 'base64', lastCommitId: version }), opts);
      } catch (e) {
        // GitLab: 400 "You are attempting to update a file that has changed since you started editing it."
        if (statusOf(e) === 400 && /changed since/i.test(String((e as { cause?: { description?: string } }).cause?.description ?? ''))) return { ok: false, conflict: true };
        throw fail(`write ${path} on ${branch}`, e);
      }
      const head = await call(`read branch ${branch}`, () => api.Branches.show(p, branch));
      return { ok: true, commit: String(head.commit.id) };
    },
    async findChange(branch, base) {
      const m = (await ours(await mergeRequests({ sourceBranch: branch, targetBranch: base, state: 'opened' })))[0];
      return m ? toChange(m) : undefined;
    },
    async endedChangeHeads(branch) {
      const mine = (await ours(await mergeRequests({ sourceBranch: branch }))).filter((m) => m.source_branch === branch);
      // An open change is `opened` (or `locked` while it is being merged): such a branch is never reset.
      const ended = mine.filter((m) => m.state === 'merged' || m.state === 'closed');
      return { open: mine.length > ended.length, heads: ended.map((m) => m.sha ?? '').filter(Boolean) };
    },
    async openChange(c) {
      return toChange((await call('open the merge request', () => api.MergeRequests.create(p, c.branch, c.base, c.title, { description: c.body, removeSourceBranch: true }))) as unknown as Mr);
    },
    async updateChange(number, c) {
      return toChange((await call(`update merge request !${number}`, () => api.MergeRequests.edit(p, number, { title: c.title, description: c.body }))) as unknown as Mr);
    },
    async getStatus(sha, context) {
      const list = (await call('read commit statuses', () => api.Commits.allStatuses(p, sha, { name: context, perPage: 20, maxPages: 1 } as never))) as unknown as { name: string; status: string; description?: string | null; target_url?: string | null }[];
      const s = list.find((x) => x.name === context);
      if (!s) return undefined;
      const state: CommitStatus['state'] = s.status === 'success' ? 'success' : s.status === 'failed' ? 'failure' : 'pending';
      return { state, context, description: s.description ?? '', ...(s.target_url ? { targetUrl: s.target_url } : {}) };
    },
    async setStatus(sha, s) {
      const state = s.state === 'failure' ? 'failed' : s.state === 'success' ? 'success' : 'pending';
      await call('post the commit status', () => api.Commits.editStatus(p, sha, state, { name: s.context, description: s.description.slice(0, 255), ...(s.targetUrl ? { targetUrl: s.targetUrl } : {}) }));
    },
  };
}
