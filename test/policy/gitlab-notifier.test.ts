import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveComponent } from '../action/gitlab-components.js';
import { repoRoot } from '../support/cli.js';
import { gitLabNotifier } from '../../actions/policy-check/gitlab.js';
import { run } from '../../actions/policy-check/run.js';
import { COMMENT_MARKER } from '../../actions/policy-check/notifier.js';
import { GITLAB_STATUS_STATES } from '../support/gitlab-api.js';
import { gitlabReporterFromEnv } from '../../actions/build/gitlab-status.js';

interface Rec { method: string; path: string; body: Record<string, unknown>; token: string | undefined }

// A local GitLab stand-in for merge-request notes and commit statuses that keeps the notes as
// state and records every request, so the test sees what the real Gitbeaker client sends.
describe('GitLab notifier (merge-request note + commit status)', () => {
  let server: Server;
  let url: string;
  const requests: Rec[] = [];
  // The token's user is the project access token's bot (id 77); note 3 is a reviewer's.
  const BOT = { id: 77, username: 'project_42_bot_1' };
  const notes: { id: number; body: string; author: { id: number; username: string } }[] = [{ id: 3, body: 'LGTM', author: { id: 5, username: 'reviewer' } }];
  let editFails = false;
  let statusFails = false;
  const SHA = 'e'.repeat(40);

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const body = raw ? (String(req.headers['content-type']).includes('json') ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw))) : {};
      requests.push({ method: req.method!, path: u.pathname, body, token: req.headers['private-token'] as string | undefined });
      const json = (status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.method === 'GET' && u.pathname === '/api/v4/user') return json(200, { ...BOT, bot: true });
      const notesPath = /^\/api\/v4\/projects\/42\/merge_requests\/7\/notes(?:\/(\d+))?$/.exec(u.pathname);
      if (notesPath && req.method === 'GET' && !notesPath[1]) return json(200, notes);
      if (notesPath && req.method === 'POST') {
        notes.push({ id: 100 + notes.length, body: String(body.body), author: BOT });
        return json(201, notes.at(-1));
      }
      if (notesPath && req.method === 'PUT' && notesPath[1]) {
        const n = notes.find((x) => x.id === Number(notesPath[1]));
        if (!n) return json(404, { message: '404 Not found' });
        // GitLab lets only a note's author edit it.
        if (editFails || n.author.id !== BOT.id) return json(403, { message: '403 Forbidden' });
        n.body = String(body.body);
        return json(200, n);
      }
      if (req.method === 'POST' && /^\/api\/v4\/projects\/42\/statuses\/[0-9a-f]{40}$/.test(u.pathname)) {
        if (statusFails) return json(401, { message: '401 Unauthorized' });
        return json(201, { id: 1, status: body.state });
      }
      json(404, { message: '404 Not Found' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('creates the marked note once, then edits it; statuses use the cerro-torre/policy name', async () => {
    const n = gitLabNotifier({ token: 'glpat-test', host: url, projectId: 42, sha: SHA, mergeRequestIid: 7 });
    expect(await n.upsertComment('## report 1')).toEqual({ id: 101, created: true });
    await n.setStatus('failure', 'tests 1/2');
    expect(await n.upsertComment('## report 2')).toEqual({ id: 101, created: false });
    await n.setStatus('success', 'tests 2/2', 'https://gitlab.example/job/1');

    expect(notes.map((n) => ({ id: n.id, body: n.body }))).toEqual([{ id: 3, body: 'LGTM' }, { id: 101, body: `${COMMENT_MARKER}\n## report 2` }]);
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/v4/user',
      'GET /api/v4/projects/42/merge_requests/7/notes',
      'POST /api/v4/projects/42/merge_requests/7/notes',
      `POST /api/v4/projects/42/statuses/${SHA}`,
      'GET /api/v4/user',
      'GET /api/v4/projects/42/merge_requests/7/notes',
      'PUT /api/v4/projects/42/merge_requests/7/notes/101',
      `POST /api/v4/projects/42/statuses/${SHA}`,
    ]);
    expect(requests.every((r) => r.token === 'glpat-test')).toBe(true);
    const statuses = requests.filter((r) => r.path.includes('/statuses/')).map((r) => r.body);
    expect(statuses.map((b) => b.state)).toEqual(['failed', 'success']);
    for (const b of statuses) expect(GITLAB_STATUS_STATES).toContain(b.state);
    expect(statuses[1]).toMatchObject({ name: 'cerro-torre/policy', description: 'tests 2/2', target_url: 'https://gitlab.example/job/1' });
  });

  it('the GitLab component runs the check: note, status and JUnit from the component job', async () => {
    const jobs = resolveComponent('templates/policy-check.yml', { policies: 'examples/policy-repo/policies', 'require-tests': true });
    const [name, job] = Object.entries(jobs)[0];
    expect(name).toBe('cerro-torre-policy-check');
    expect(job.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
    const script = (job.script as string[]).join('\n');
    expect(script).toMatch(/^ct-gitlab policy-check$/m);
    expect((job.artifacts as { reports: { junit: string } }).reports.junit).toBe('policy-junit.xml');

    const cwd = await mkdtemp(join(tmpdir(), 'ct-policy-gitlab-'));
    try {
      const vars = Object.fromEntries(Object.entries(job.variables ?? {}).map(([k, v]) => [k, String(v)]));
      const env = { PATH: process.env.PATH, ...vars, CT_POLICY_DIR: join(repoRoot, vars.CT_POLICY_DIR), CT_POLICY_GITLAB_TOKEN: 'glpat-test', CI_SERVER_URL: url, CI_PROJECT_ID: '42', CI_MERGE_REQUEST_IID: '7', CI_COMMIT_SHA: SHA, CI_PROJECT_DIR: repoRoot, CI_JOB_URL: 'https://gitlab.example/job/9' };
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [join(repoRoot, 'bin/ct-gitlab.js'), 'policy-check'], { cwd, env, stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', (c) => resolve(c ?? -1));
      });
      expect(code).toBe(0);
      expect(await readFile(join(cwd, 'policy-report.md'), 'utf8')).toContain('## Cerro Torre policy check: ✅ passed');
      expect(await readFile(join(cwd, 'policy-junit.xml'), 'utf8')).toContain('failures="0" errors="0"');
      expect(notes.filter((n) => n.body.includes(COMMENT_MARKER)).map((n) => n.id)).toEqual([101]);
      expect(notes.find((n) => n.id === 101)!.body).toContain('✅ passed');
      const last = requests.filter((r) => r.path.includes('/statuses/')).at(-1)!;
      expect(last.body).toMatchObject({ state: 'success', name: 'cerro-torre/policy', target_url: 'https://gitlab.example/job/9' });
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  // A merged-results pipeline checks out GitLab's merge result (CI_COMMIT_SHA): the impact is
  // against the target's head; statuses stay on CI_COMMIT_SHA with this pipeline's id (on the source
  // head without pipeline_id GitLab makes a separate external pipeline, runatlantis/atlantis#2489,
  // and a fork's branch named `main` would post for ref `main`).
  it('a merged-results pipeline: the impact against the target branch head, statuses on CI_COMMIT_SHA in this pipeline', async () => {
    const MERGE = 'd'.repeat(40);
    const repo = await mkdtemp(join(tmpdir(), 'ct-policy-merged-'));
    try {
      await cp(join(repoRoot, 'examples/policy-repo'), repo, { recursive: true });
      const git = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...a], { encoding: 'utf8' }).trim();
      git('init', '-q', '-b', 'main');
      git('add', '-A');
      git('commit', '-qm', 'target head');
      const target = git('rev-parse', 'HEAD');
      const merged = { CI_COMMIT_SHA: MERGE, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA: SHA, CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'feature/x', CI_MERGE_REQUEST_TARGET_BRANCH_SHA: target, CI_MERGE_REQUEST_DIFF_BASE_SHA: 'f'.repeat(40), CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main', CI_PIPELINE_ID: '555' };

      // The component's own line picks the base.
      const job = Object.values(resolveComponent('templates/policy-check.yml', { policies: 'policies' }))[0];
      const line = (job.script as string[]).find((l) => l.includes('CT_POLICY_BASE_REF'))!;
      expect(execFileSync('sh', ['-c', `${line}; printf %s "$CT_POLICY_BASE_REF"`], { env: { PATH: process.env.PATH, ...merged }, encoding: 'utf8' })).toBe(target);

      // ct-gitlab policy-check without CT_POLICY_BASE_REF: the same choice, and the status on MERGE.
      requests.length = 0;
      const env = { PATH: process.env.PATH, ...merged, CT_POLICY_DIR: join(repo, 'policies'), CT_POLICY_DEPLOYMENTS: join(repo, 'deployments.example.json'), CT_POLICY_GITLAB_TOKEN: 'glpat-test', CI_SERVER_URL: url, CI_PROJECT_ID: '42', CI_MERGE_REQUEST_IID: '7', CI_PROJECT_DIR: repo, CI_JOB_URL: 'https://gitlab.example/job/9' };
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [join(repoRoot, 'bin/ct-gitlab.js'), 'policy-check'], { cwd: repo, env, stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', (c) => resolve(c ?? -1));
      });
      const report = await readFile(join(repo, 'policy-report.md'), 'utf8');
      expect({ code, unread: report.includes('could not be read') }).toEqual({ code: 0, unread: false });
      expect(report).not.toContain('impact not computed');
      expect(requests.filter((r) => r.path.includes('/statuses/')).map((r) => [r.path, r.body.state])).toEqual([[`/api/v4/projects/42/statuses/${MERGE}`, 'success']]);

      // The build's status reporter: the pipeline's commit, ref and id, even for a fork's branch named main.
      requests.length = 0;
      const reporter = gitlabReporterFromEnv({ ...merged, CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'main', CI_SERVER_URL: url, CI_PROJECT_ID: '42', CI_COMMIT_REF_NAME: 'refs/merge-requests/7/merge' }, 'glpat-test')!;
      expect(await reporter({ state: 'success', context: 'cerro-torre/build', description: 'built' })).toBeUndefined();
      expect(requests.map((r) => r.path)).toEqual([`/api/v4/projects/42/statuses/${MERGE}`]);
      expect(requests[0].body).toMatchObject({ state: 'success', name: 'cerro-torre/build', ref: 'refs/merge-requests/7/merge', pipeline_id: 555 });
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

  it('a status that cannot be posted fails the job, after the report, the JUnit and the note are written', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'ct-policy-gitlab-status-'));
    statusFails = true;
    try {
      const env = { PATH: process.env.PATH, CT_POLICY_DIR: join(repoRoot, 'examples/policy-repo/policies'), CT_POLICY_GITLAB_TOKEN: 'glpat-expired', CI_SERVER_URL: url, CI_PROJECT_ID: '42', CI_MERGE_REQUEST_IID: '7', CI_COMMIT_SHA: SHA, CI_PROJECT_DIR: cwd };
      requests.length = 0;
      const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [join(repoRoot, 'bin/ct-gitlab.js'), 'policy-check'], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('close', (c) => resolve({ code: c ?? -1, stderr: err }));
      });
      expect(code).toBe(1);
      expect(stderr).toMatch(/ERROR: the cerro-torre\/policy commit status was not posted/);
      // The check itself passed: the report says so, and is there.
      expect(await readFile(join(cwd, 'policy-report.md'), 'utf8')).toContain('## Cerro Torre policy check: ✅ passed');
      expect(await readFile(join(cwd, 'policy-junit.xml'), 'utf8')).toContain('failures="0" errors="0"');
      expect(requests.some((r) => /^(POST|PUT)$/.test(r.method) && r.path.startsWith('/api/v4/projects/42/merge_requests/7/notes'))).toBe(true);
    } finally {
      statusFails = false;
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('a note carrying the marker by anyone else is left alone: the bot writes its own; a note that cannot be written does not lose the status', async () => {
    const fake = { id: 2, body: `${COMMENT_MARKER}\n## Cerro Torre policy check: ✅ passed`, author: { id: 5, username: 'reviewer' } };
    notes.splice(0, notes.length, fake);
    requests.length = 0;
    const n = gitLabNotifier({ token: 'glpat-test', host: url, projectId: 42, sha: SHA, mergeRequestIid: 7 });
    const first = await run({ policies: join(repoRoot, 'examples/policy-repo/policies'), notifier: n });
    expect(first.comment).toEqual({ id: 101, created: true });
    expect(notes[0]).toEqual(fake);
    expect(requests.filter((r) => r.method === 'PUT')).toEqual([]);

    editFails = true;
    requests.length = 0;
    const second = await run({ policies: join(repoRoot, 'examples/policy-repo/policies'), notifier: n });
    expect(second.commentError?.message).toContain('Forbidden');
    expect(requests.filter((r) => r.path.includes('/statuses/')).map((r) => r.body)).toEqual([expect.objectContaining({ state: 'success', name: 'cerro-torre/policy' })]);
    editFails = false;
  });
});
