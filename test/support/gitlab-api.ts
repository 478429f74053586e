/**
 * A local stand-in for GitLab's REST API, for the one call Cerro Torre makes: `POST
 * /api/v4/projects/:id/statuses/:sha` (https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit).
 * Requests are checked against the documented shape — authentication header, `state` from the
 * documented enum (required), `name`/`context`, `ref`, `target_url`, `description`,
 * `coverage`, `pipeline_id`, nothing else — and recorded; a request the real API would refuse or
 * misread is answered 400 and listed in `errors`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const GITLAB_STATUS_STATES = ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'] as const;

export interface GitlabStatusCall {
  projectId: string;
  sha: string;
  body: Record<string, unknown>;
  auth: string;
}

export interface GitlabApi {
  url: string;
  statuses: GitlabStatusCall[];
  errors: string[];
  close(): Promise<void>;
}

const FIELDS: Record<string, (v: unknown) => boolean> = {
  state: (v) => (GITLAB_STATUS_STATES as readonly string[]).includes(v as string),
  ref: (v) => typeof v === 'string' && v.length > 0 && v.length <= 255,
  name: (v) => typeof v === 'string' && v.length > 0 && v.length <= 255,
  context: (v) => typeof v === 'string' && v.length > 0 && v.length <= 255,
  target_url: (v) => typeof v === 'string' && /^https?:\/\/\S+$/.test(v) && v.length <= 255,
  description: (v) => typeof v === 'string' && v.length <= 255,
  coverage: (v) => typeof v === 'number' && Number.isFinite(v),
  pipeline_id: (v) => Number.isInteger(typeof v === 'string' ? Number(v) : v),
};

export async function startGitlabApi(opts: { token: string }): Promise<GitlabApi> {
  const statuses: GitlabStatusCall[] = [];
  const errors: string[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const fail = (status: number, message: string) => {
      errors.push(`${req.method} ${url.pathname}: ${message}`);
      send(status, { message });
    };
    const m = /^\/api\/v4\/projects\/([^/]+)\/statuses\/([0-9a-f]{40})$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) return fail(404, '404 Not Found');
    const auth = (req.headers['private-token'] as string | undefined) ?? (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (auth !== opts.token) return fail(401, '401 Unauthorized');
    let body: Record<string, unknown> = Object.fromEntries(url.searchParams.entries());
    const raw = Buffer.concat(chunks).toString('utf8');
    if (raw) {
      const type = String(req.headers['content-type'] ?? '');
      try {
        body = { ...body, ...(type.includes('application/json') ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw))) };
      } catch {
        return fail(400, 'body is not JSON');
      }
    }
    for (const [k, v] of Object.entries(body)) {
      const check = FIELDS[k];
      if (!check) return fail(400, `unknown parameter ${k}`);
      if (!check(v)) return fail(400, `${k} is invalid`);
    }
    if (body.state === undefined) return fail(400, 'state is missing');
    const projectId = decodeURIComponent(m[1]);
    statuses.push({ projectId, sha: m[2], body, auth });
    send(201, { id: statuses.length, sha: m[2], ref: body.ref ?? null, status: body.state, name: body.name ?? body.context ?? 'default', target_url: body.target_url ?? null, description: body.description ?? null, created_at: new Date().toISOString(), allow_failure: false });
  };
  const server = createServer((req, res) => void handle(req, res).catch((e) => { errors.push(String(e)); res.writeHead(500).end(); }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    statuses,
    errors,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
