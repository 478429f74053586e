/**
 * The GitHub forge through the real Octokit client: contents API writes carry the blob sha read
 * (GitHub answers 409 when the file changed meanwhile), one pull request per branch, commit
 * statuses. Rate limits are waited out with the reset time GitHub sends; a rejected token is a
 * clear error, never retried.
 */
import { Octokit } from '@octokit/rest';
import { importPKCS8, SignJWT } from 'jose';
import { createPrivateKey } from 'node:crypto';
import { CtError } from '../core/errors.js';
import type { ChangeRequest, CommitStatus, FileVersion, Forge, WriteOutcome } from './forge.js';
import { forgeHttp, type ForgeHttp } from './forge-http.js';
import { forgeError, withRateLimit, type RetryOptions } from './rate-limit.js';

export interface GitHubForgeOptions extends RetryOptions {
  apiUrl?: string;
  /** Non-public addresses the API may resolve to (a local GitHub Enterprise, a test stand-in). */
  allowedAddresses?: string[];
  token: string;
  /** `owner/name` of the desired-state repository. */
  repository: string;
}

/** Pages of 100 pull requests read at most when looking for ours. */
const PULL_PAGES = 10;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function ownerRepo(repository: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9_.-]{1,100})\/([A-Za-z0-9_.-]{1,100})$/.exec(repository);
  if (!m) throw new CtError('USAGE', `repository ${JSON.stringify(repository.slice(0, 200))} must be owner/name`, {});
  return { owner: m[1], repo: m[2] };
}

/** Every request goes through the URL guard (forge-http.ts); the returned http must be closed. */
function octokitFor(opts: { apiUrl?: string; token: string; allowedAddresses?: string[] } & RetryOptions): { gh: Octokit; http: ForgeHttp } {
  const http = forgeHttp({ allowedAddresses: opts.allowedAddresses });
  const o = new Octokit({ baseUrl: opts.apiUrl ?? 'https://api.github.com', auth: opts.token, request: { retries: 0, fetch: http.fetch }, log: quiet, userAgent: 'cerro-torre-promote' });
  o.hook.wrap('request', (request, options) => withRateLimit('github', async () => request(options), opts));
  return { gh: o, http };
}

export function githubForge(opts: GitHubForgeOptions): Forge {
  const { owner, repo } = ownerRepo(opts.repository);
  const { gh, http } = octokitFor(opts);
  const call = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw forgeError('github', what, e);
    }
  };
  const notFound = (e: unknown) => (e as { status?: number }).status === 404;
  // The `head` filter is `owner:branch`, and a fork in the same organisation (GitHub allows one
  // under another name) has the same label: its pull request from a branch named
  // ct-promote/<env>/<app> would be listed as ours, and taking it would put the verified evidence
  // and a success status on someone else's commit. Only a pull request whose head is in the
  // repository it targets counts; ids, since names change on a rename (GitHub redirects the old
  // one) and compare case-insensitively. A deleted fork's head.repo is null: never ours either.
  const sameRepo = (x: { head: { repo: { id: number } | null }; base: { repo: { id: number } } }) => x.head.repo !== null && x.head.repo.id === x.base.repo.id;
  // Pull requests from this repository matching the filter, newest first. GitHub has no filter by
  // head repository, and the list is newest first: forks in the same organisation (their pull
  // requests, open or closed, listed under the same `head`) could push ours off a page, so pages
  // are read on, up to PULL_PAGES of 100 (`first`: until one of ours is found).
  type PullItem = Awaited<ReturnType<typeof gh.rest.pulls.list>>['data'][number];
  const pulls = (query: { state: 'open' | 'all'; head: string; base?: string }, keep: (x: PullItem) => boolean, first: boolean) => call('list pull requests', async () => {
    const found: PullItem[] = [];
    let pages = 0;
    for await (const page of gh.paginate.iterator(gh.rest.pulls.list, { owner, repo, ...query, per_page: 100 })) {
      found.push(...page.data.filter((x) => keep(x) && sameRepo(x)));
      if ((first && found.length > 0) || ++pages >= PULL_PAGES) break;
    }
    return found;
  });
  const toChange = (p: { number: number; html_url: string; head: { sha: string }; title: string; body?: string | null }): ChangeRequest =>
    ({ number: p.number, url: p.html_url, headSha: p.head.sha, title: p.title, body: p.body ?? '' });

  return {
    kind: 'github',
    close: () => http.close(),
    defaultBranch: () => call('read the repository', async () => (await gh.rest.repos.get({ owner, repo })).data.default_branch),
    async branchHead(branch) {
      try {
        return (await gh.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
      } catch (e) {
        if (notFound(e)) return undefined;
        throw forgeError('github', `read branch ${branch}`, e);
      }
    },
    async createBranch(branch, sha) {
      try {
        await gh.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha });
        return true;
      } catch (e) {
        if ((e as { status?: number }).status === 422) return false; // "Reference already exists"
        throw forgeError('github', `create branch ${branch}`, e);
      }
    },
    resetBranch: (branch, sha) => call(`reset branch ${branch}`, async () => {
      await gh.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha, force: true });
    }),
    async readFile(path, ref): Promise<FileVersion | undefined> {
      try {
        const r = await gh.rest.repos.getContent({ owner, repo, path, ref });
        const d = r.data as { type?: string; content?: string; encoding?: string; sha: string };
        if (Array.isArray(r.data) || d.type !== 'file' || typeof d.content !== 'string') throw new CtError('PROMOTE_YAML_INVALID', `${path} at ${ref} is not a file`, { path });
        return { text: Buffer.from(d.content, 'base64').toString('utf8'), version: d.sha };
      } catch (e) {
        if (notFound(e)) return undefined;
        throw forgeError('github', `read ${path} at ${ref}`, e);
      }
    },
    async writeFile(path, branch, text, version, message): Promise<WriteOutcome> {
      try {
        const r = await gh.rest.repos.createOrUpdateFileContents({ owner, repo, path, branch, message, content: Buffer.from(text).toString('base64'), sha: version });
        return { ok: true, commit: r.data.commit.sha! };
      } catch (e) {
        // 409: the blob sha we read is no longer the file's (someone pushed meanwhile).
        if ((e as { status?: number }).status === 409) return { ok: false, conflict: true };
        throw forgeError('github', `write ${path} on ${branch}`, e);
      }
    },
    async findChange(branch, base) {
      const mine = await pulls({ state: 'open', head: `${owner}:${branch}`, base }, (x) => x.head.ref === branch, true);
      const p = mine[0];
      return p ? toChange(p) : undefined;
    },
    async endedChangeHeads(branch) {
      const mine = await pulls({ state: 'all', head: `${owner}:${branch}` }, (x) => x.head.ref === branch, false);
      // A closed pull request's head.sha is its head when it was closed: later pushes do not move it.
      return { open: mine.some((x) => x.state === 'open'), heads: mine.filter((x) => x.state !== 'open').map((x) => x.head.sha) };
    },
    async openChange(c) {
      const r = await call('open the pull request', () => gh.rest.pulls.create({ owner, repo, head: c.branch, base: c.base, title: c.title, body: c.body, maintainer_can_modify: true }));
      return toChange(r.data);
    },
    async updateChange(number, c) {
      const r = await call(`update pull request #${number}`, () => gh.rest.pulls.update({ owner, repo, pull_number: number, title: c.title, body: c.body }));
      return toChange(r.data);
    },
    async getStatus(sha, context) {
      const r = await call('read commit statuses', () => gh.rest.repos.listCommitStatusesForRef({ owner, repo, ref: sha, per_page: 100 }));
      // Newest first (GitHub's order): the first with our context is the one that counts.
      const s = r.data.find((x) => x.context === context);
      return s ? { state: s.state as CommitStatus['state'], context, description: s.description ?? '', ...(s.target_url ? { targetUrl: s.target_url } : {}) } : undefined;
    },
    async setStatus(sha, s) {
      await call('post the commit status', () => gh.rest.repos.createCommitStatus({ owner, repo, sha, state: s.state, context: s.context, description: s.description.slice(0, 140), ...(s.targetUrl ? { target_url: s.targetUrl } : {}) }));
    },
  };
}

/**
 * A GitHub App installation token (for a desired-state repository in another organisation):
 * a 9-minute RS256 JWT as the App, exchanged for an installation token.
 */
export async function githubAppToken(opts: { apiUrl?: string; allowedAddresses?: string[]; appId: string; privateKey: string; installationId: number } & RetryOptions): Promise<{ token: string; expiresAt: string }> {
  let key;
  try {
    key = await importPKCS8(createPrivateKey(opts.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256');
  } catch (e) {
    throw new CtError('KEY_INVALID', `GitHub App private key: ${(e as Error).message}`, {}, { cause: e });
  }
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setIssuer(opts.appId).setIssuedAt(now - 60).setExpirationTime(now + 540).sign(key);
  const { gh, http } = octokitFor({ ...opts, token: jwt });
  let r;
  try {
    r = await gh.rest.apps.createInstallationAccessToken({ installation_id: opts.installationId });
  } catch (e) {
    throw forgeError('github', `create an installation token for installation ${opts.installationId}`, e);
  } finally {
    await http.close();
  }
  if (Date.parse(r.data.expires_at) <= Date.now()) throw new CtError('PROMOTE_TOKEN_REJECTED', `the installation token GitHub returned expired at ${r.data.expires_at}`, {});
  return { token: r.data.token, expiresAt: r.data.expires_at };
}
