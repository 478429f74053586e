/**
 * A GitLab project's state behind a local stand-in of the REST API v4 endpoints promotion uses
 * (https://docs.gitlab.com/api/): project, branches, repository files (`last_commit_id` checked
 * on edit, 400 "changed since" as GitLab answers), merge requests, commit statuses. Requests must
 * carry the token; unknown endpoints and parameters are refused and listed in `errors`. Lists of
 * merge requests are as gitlab.com answers them: newest first, `per_page` (20 unless given, at most
 * 100) to a page, `page`, and the `link` / `x-next-page` headers clients page with.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Mr {
  iid: number; source_branch: string; target_branch: string; title: string; description: string; state: 'opened' | 'merged' | 'closed';
  /** The head when it was merged or closed (the source branch may move on); a fork's merge request names its head here. */ sha?: string;
  /** A fork's merge request comes from another project (GitLab lists it under the project it targets); this project's id otherwise. */ source_project_id?: number;
}

/** The stand-in project's id (`GET /projects/:id` answers it; merge requests name it as their target). */
export const PROJECT_ID = 1;

export interface GitlabRepo {
  url: string;
  errors: string[];
  requests: { method: string; path: string }[];
  mrs: Mr[];
  statuses: { sha: string; name: string; status: string; description: string }[];
  file(branch: string, path: string): string | undefined;
  push(branch: string, path: string, text: string): void;
  /** A branch's head commit. */
  head(branch: string): string | undefined;
  close(): Promise<void>;
}

const ALLOWED: Record<string, string[]> = {
  // https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests (those this stand-in honours)
  'GET merge_requests': ['state', 'source_branch', 'target_branch', 'source_project_id', 'per_page', 'page'],
  'POST branches': ['branch', 'ref'],
  'PUT files': ['branch', 'content', 'commit_message', 'encoding', 'last_commit_id', 'author_email', 'author_name', 'start_branch'],
  'POST merge_requests': ['source_branch', 'target_branch', 'title', 'description', 'remove_source_branch'],
  'PUT merge_request': ['title', 'description'],
  'POST statuses': ['state', 'name', 'context', 'description', 'target_url', 'ref', 'coverage', 'pipeline_id'],
};

export async function startGitlabRepo(opts: { token: string; project: string; files: Record<string, string> }): Promise<GitlabRepo> {
  const commits = new Map<string, Map<string, string>>();
  const branches = new Map<string, string>();
  let n = 0;
  const commit = (files: Map<string, string>) => {
    const id = createHash('sha1').update(`${++n}`).digest('hex');
    commits.set(id, files);
    return id;
  };
  branches.set('main', commit(new Map(Object.entries(opts.files))));
  const mrs: Mr[] = [];
  const statuses: GitlabRepo['statuses'] = [];
  const errors: string[] = [];
  const requests: GitlabRepo['requests'] = [];
  const fileAt = (ref: string, path: string) => commits.get(branches.get(ref) ?? ref)?.get(path);
  const push = (branch: string, path: string, text: string) => {
    const files = new Map(commits.get(branches.get(branch)!)!);
    files.set(path, text);
    branches.set(branch, commit(files));
  };
  const mrJson = (m: Mr) => ({ ...m, web_url: `https://gitlab.example/${opts.project}/-/merge_requests/${m.iid}`, sha: m.sha ?? branches.get(m.source_branch), source_project_id: m.source_project_id ?? PROJECT_ID, target_project_id: PROJECT_ID });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const fail = (status: number, message: string) => {
      if (status !== 404 || !/branch|file/i.test(message)) errors.push(`${req.method} ${url.pathname}: ${message}`);
      send(status, { message });
    };
    if ((req.headers['private-token'] ?? '') !== opts.token) return fail(401, '401 Unauthorized');
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown> = Object.fromEntries([...url.searchParams.entries()]);
    if (raw) body = { ...body, ...(String(req.headers['content-type']).includes('json') ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw))) };
    const check = (op: string) => {
      const bad = Object.keys(body).filter((k) => !ALLOWED[op].includes(k));
      if (bad.length) {
        fail(400, `unknown parameter ${bad[0]}`);
        return false;
      }
      return true;
    };
    requests.push({ method: req.method!, path: url.pathname });
    const m = /^\/api\/v4\/projects\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m || decodeURIComponent(m[1]) !== opts.project) return fail(404, '404 Project Not Found');
    const rest = m[2] ?? '';
    let x: RegExpExecArray | null;
    if (req.method === 'GET' && rest === '') return send(200, { id: PROJECT_ID, path_with_namespace: opts.project, default_branch: 'main' });
    if (req.method === 'GET' && (x = /^\/repository\/branches\/(.+)$/.exec(rest))) {
      const b = decodeURIComponent(x[1]);
      return branches.has(b) ? send(200, { name: b, commit: { id: branches.get(b) } }) : fail(404, '404 Branch Not Found');
    }
    if (req.method === 'DELETE' && (x = /^\/repository\/branches\/(.+)$/.exec(rest))) {
      const b = decodeURIComponent(x[1]);
      if (b === 'main') return fail(400, 'Cannot remove the default branch');
      if (!branches.delete(b)) return fail(404, '404 Branch Not Found');
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && rest === '/repository/branches') {
      if (!check('POST branches')) return;
      const b = String(body.branch);
      if (branches.has(b)) return fail(400, 'Branch already exists');
      const at = branches.get(String(body.ref)) ?? (commits.has(String(body.ref)) ? String(body.ref) : undefined);
      if (!at) return fail(400, 'Invalid reference name');
      branches.set(b, at);
      return send(201, { name: b, commit: { id: at } });
    }
    if ((x = /^\/repository\/files\/(.+)$/.exec(rest))) {
      const path = decodeURIComponent(x[1]);
      if (req.method === 'GET') {
        const ref = String(body.ref ?? '');
        const text = fileAt(ref, path);
        return text === undefined ? fail(404, '404 File Not Found') : send(200, { file_path: path, content: Buffer.from(text).toString('base64'), encoding: 'base64', last_commit_id: branches.get(ref) ?? ref, ref });
      }
      if (req.method === 'PUT') {
        if (!check('PUT files')) return;
        const b = String(body.branch);
        // GitLab compares last_commit_id with the last commit that touched the file: here, the branch head when the file differs.
        if (body.last_commit_id !== branches.get(b)) {
          const before = fileAt(String(body.last_commit_id), path);
          if (before !== fileAt(b, path)) return fail(400, 'You are attempting to update a file that has changed since you started editing it.');
        }
        const content = body.encoding === 'base64' ? Buffer.from(String(body.content), 'base64').toString('utf8') : String(body.content);
        push(b, path, content);
        return send(200, { file_path: path, branch: b });
      }
    }
    if (rest === '/merge_requests' && req.method === 'GET') {
      if (!check('GET merge_requests')) return;
      const perPage = body.per_page === undefined ? 20 : Number(body.per_page);
      const page = body.page === undefined ? 1 : Number(body.page);
      if (!Number.isInteger(perPage) || perPage < 1 || !Number.isInteger(page) || page < 1) return fail(400, 'per_page or page is invalid');
      const size = Math.min(perPage, 100);
      const all = mrs
        .filter((r) => (!body.state || body.state === 'all' || r.state === body.state) && (!body.source_branch || r.source_branch === body.source_branch) && (!body.target_branch || r.target_branch === body.target_branch)
          && (body.source_project_id === undefined || (r.source_project_id ?? PROJECT_ID) === Number(body.source_project_id)))
        .sort((a, b) => b.iid - a.iid); // newest first: GitLab's default order_by=created_at, sort=desc
      const pages = Math.max(1, Math.ceil(all.length / size));
      const at = (n: number) => { const u = new URL(url); u.searchParams.set('page', String(n)); u.searchParams.set('per_page', String(size)); return `<http://${req.headers.host}${u.pathname}${u.search}>`; };
      const link = [...(page < pages ? [`${at(page + 1)}; rel="next"`] : []), ...(page > 1 ? [`${at(page - 1)}; rel="prev"`] : []), `${at(1)}; rel="first"`, `${at(pages)}; rel="last"`].join(', ');
      res.writeHead(200, {
        'content-type': 'application/json', link, 'x-page': String(page), 'x-per-page': String(size), 'x-total': String(all.length), 'x-total-pages': String(pages),
        'x-next-page': page < pages ? String(page + 1) : '', 'x-prev-page': page > 1 ? String(page - 1) : '',
      }).end(JSON.stringify(all.slice((page - 1) * size, page * size).map(mrJson)));
      return;
    }
    if (rest === '/merge_requests' && req.method === 'POST') {
      if (!check('POST merge_requests')) return;
      // As GitLab: one open merge request per source and target branch.
      const open = mrs.find((y) => y.state === 'opened' && (y.source_project_id ?? PROJECT_ID) === PROJECT_ID && y.source_branch === String(body.source_branch) && y.target_branch === String(body.target_branch));
      if (open) return fail(409, `Another open merge request already exists for this source branch: !${open.iid}`);
      const r: Mr = { iid: mrs.length + 1, source_branch: String(body.source_branch), target_branch: String(body.target_branch), title: String(body.title), description: String(body.description ?? ''), state: 'opened' };
      mrs.push(r);
      return send(201, mrJson(r));
    }
    if ((x = /^\/merge_requests\/(\d+)$/.exec(rest)) && req.method === 'PUT') {
      if (!check('PUT merge_request')) return;
      const r = mrs.find((y) => y.iid === Number(x![1]));
      if (!r) return fail(404, '404 Not found');
      if (body.title !== undefined) r.title = String(body.title);
      if (body.description !== undefined) r.description = String(body.description);
      return send(200, mrJson(r));
    }
    if ((x = /^\/repository\/commits\/([0-9a-f]{40})\/statuses$/.exec(rest)) && req.method === 'GET') {
      return send(200, statuses.filter((s) => s.sha === x![1] && (!body.name || s.name === body.name)).reverse());
    }
    if ((x = /^\/statuses\/([0-9a-f]{40})$/.exec(rest)) && req.method === 'POST') {
      if (!check('POST statuses')) return;
      if (!['pending', 'running', 'success', 'failed', 'canceled'].includes(String(body.state))) return fail(400, 'state is invalid');
      const s = { sha: x[1], name: String(body.name ?? body.context ?? 'default'), status: String(body.state), description: String(body.description ?? '') };
      statuses.push(s);
      return send(201, s);
    }
    return fail(404, `no such endpoint in this stand-in`);
  };
  const server = createServer((req, res) => void handle(req, res).catch((e) => { errors.push(String(e)); res.writeHead(500).end(); }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    errors, requests, mrs, statuses,
    file: (b, p) => fileAt(b, p),
    push,
    head: (b: string) => branches.get(b),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
