import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../actions/policy-check/run.js';
import { gitHubNotifier } from '../../actions/policy-check/github.js';
import { COMMENT_MARKER } from '../../actions/policy-check/notifier.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { repoRoot } from '../support/cli.js';
import { withSbom } from './helpers.js';

const TEMPLATE = join(repoRoot, 'examples', 'policy-repo');
const SHA = 'c'.repeat(40);
// What GitHub answers GET /user with an installation token (the workflow's GITHUB_TOKEN is one).
const INTEGRATION_403 = { status: 403, body: { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest/users/users#get-the-authenticated-user' } };
const commentJson = (c: { id: number; body: string; login: string }) => ({
  id: c.id, body: c.body, node_id: 'x', url: 'u', html_url: 'h', issue_url: 'i', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', author_association: 'MEMBER',
  user: { login: c.login, id: c.login.length, type: c.login.endsWith('[bot]') ? 'Bot' : 'User' },
});

// A commit status as GitHub answers POST /repos/{owner}/{repo}/statuses/{sha}: `creator` is whoever
// the token is (the workflow's GITHUB_TOKEN: github-actions[bot]; an App's installation token: its bot).
const statusJson = (req: { params: Record<string, string>; body: { state: string; context?: string; description?: string; target_url?: string } }, login: string) => ({
  url: `https://api.github.com/repos/acme/policies/statuses/${req.params.sha}`, avatar_url: null, id: 1, node_id: 'x', state: req.body.state, description: req.body.description ?? null,
  target_url: req.body.target_url ?? null, context: req.body.context ?? 'default', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
  creator: { login, id: login.length, node_id: 'u', avatar_url: 'a', gravatar_id: '', url: 'u', html_url: 'h', followers_url: 'f', following_url: 'f', gists_url: 'g', starred_url: 's', subscriptions_url: 's', organizations_url: 'o', repos_url: 'r', events_url: 'e', received_events_url: 'r', type: login.endsWith('[bot]') ? 'Bot' : 'User', site_admin: false },
});

describe('policy-check action run()', () => {
  let api: GitHubApi;
  let tmp: string;
  let comments: { id: number; body: string; login: string }[];
  beforeAll(async () => {
    api = await startGitHubApi();
    tmp = await mkdtemp(join(tmpdir(), 'ct-policy-action-'));
    comments = [{ id: 7, body: 'an unrelated review comment', login: 'octocat' }];
    // The stand-in validates every request against GitHub's OpenAPI description; these responders
    // keep the comment thread as state so the second run must find and update the first comment.
    api.respond('users/get-authenticated', () => INTEGRATION_403);
    api.respond('repos/create-commit-status', (req) => ({ status: 201, body: statusJson(req, 'github-actions[bot]') }));
    api.respond('issues/list-comments', () => ({ status: 200, body: comments.map(commentJson) }));
    api.respond('issues/create-comment', (req) => {
      comments.push({ id: 100 + comments.length, body: req.body.body, login: 'github-actions[bot]' });
      return { status: 201, body: { id: comments.at(-1)!.id, body: req.body.body } };
    });
    api.respond('issues/update-comment', (req) => {
      const c = comments.find((x) => x.id === Number(req.params.comment_id))!;
      c.body = req.body.body;
      return { status: 200, body: { id: c.id, body: c.body } };
    });
  });
  afterAll(async () => {
    await api.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const notifier = () => gitHubNotifier({ token: 'ghs_test', baseUrl: api.url, owner: 'acme', repo: 'policies', sha: SHA, pr: 12 });

  it('posts one comment, then updates it in place; sets the commit status', async () => {
    const first = await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier(), requireTests: true });
    expect(first.ok).toBe(true);
    expect(first.comment).toEqual({ id: 101, created: true });
    const second = await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier(), requireTests: true });
    expect(second.comment).toEqual({ id: 101, created: false });
    expect(comments.filter((c) => c.body.includes(COMMENT_MARKER))).toHaveLength(1);
    expect(comments[0].body).toBe('an unrelated review comment');

    const ops = api.requests.map((r) => `${r.method} ${r.path}`);
    expect(ops).toEqual([
      `POST /repos/acme/policies/statuses/${SHA}`,
      'GET /repos/acme/policies/issues/12/comments',
      'POST /repos/acme/policies/issues/12/comments',
      `POST /repos/acme/policies/statuses/${SHA}`,
      'GET /repos/acme/policies/issues/12/comments',
      'PATCH /repos/acme/policies/issues/comments/101',
    ]);
    const status = api.requests.find((r) => r.operationId === 'repos/create-commit-status')!;
    expect(status.body).toMatchObject({ state: 'success', context: 'cerro-torre/policy' });
    expect(api.errors).toEqual([]);
    expect(first.markdown.startsWith(COMMENT_MARKER)).toBe(true);
  });

  it('a file or test case name holding a newline and a ``` line cannot close the report\'s code block or add a heading', async () => {
    const dir = join(tmp, 'inject');
    await cp(join(TEMPLATE, 'policies'), dir, { recursive: true });
    const inject = '\n```\n\n## fake: ✅ passed\n';
    const headings = (md: string) => md.split('\n').filter((l) => /^\s{0,3}#/.test(l));
    // Inside a fence only a line of at least as many backticks closes it: every fence line must be
    // the opening or closing one of its own block, and each block's closing the same as its opening.
    const fencesBalanced = (md: string) => {
      const fences = md.split('\n').filter((l) => /^\s{0,3}`{3,}/.test(l));
      return fences.length % 2 === 0 && fences.every((f, i) => i % 2 === 1 || fences[i + 1] === f);
    };

    // A policy file (with a schema error, so lint lists it) whose name carries the injection.
    const evil = join(dir, 'production', `evil${inject}.policy.yaml`);
    const policy = await readFile(join(dir, 'production', 'production.policy.yaml'), 'utf8');
    await writeFile(evil, policy.replace('mode: strict', 'mode: enforce').replace(/^name: .*$/m, 'name: evil'));
    const linted = await run({ policies: dir });
    expect(linted.ok).toBe(false);
    expect(headings(linted.markdown)).toEqual(['## Cerro Torre policy check: ❌ failed']);
    expect(linted.markdown).not.toMatch(/^## fake/m);
    expect(fencesBalanced(linted.markdown)).toBe(true);
    expect(linted.markdown).toContain(`${JSON.stringify(evil)}:`);
    await rm(evil);

    // A test file and a failing case of it whose names carry it.
    const cases = join(dir, 'development', `cases${inject}.test.yaml`);
    await writeFile(cases, `cases:\n  - name: ${JSON.stringify(`denied?${inject}`)}\n    input: fixtures/feature-build.yaml\n    expect: { allow: false }\n`);
    const failed = await run({ policies: dir });
    expect(failed.tests.failed).toBe(1);
    expect(headings(failed.markdown)).toEqual(['## Cerro Torre policy check: ❌ failed']);
    expect(failed.markdown).not.toMatch(/^## fake/m);
    expect(fencesBalanced(failed.markdown)).toBe(true);
    expect(failed.markdown).toContain(`FAIL ${JSON.stringify(cases)}:2 denied?\\n\`\`\`\\n\\n## fake: ✅ passed\\n`);
  });

  it('a failing case named with 200,000 backtick runs still gets the status posted and a bounded comment', async () => {
    const dir = join(tmp, 'backticks');
    await cp(join(TEMPLATE, 'policies'), dir, { recursive: true });
    const name = '`a'.repeat(200_000);
    await writeFile(join(dir, 'development', 'long.test.yaml'), `cases:\n  - name: ${JSON.stringify(name)}\n    input: fixtures/feature-build.yaml\n    expect: { allow: false }\n`);
    const n = api.requests.length;
    // Before, the fence was sized with Math.max(0, ...runs): a RangeError (stack), thrown before the status.
    const r = await run({ policies: dir, notifier: notifier() });
    expect(r.tests.failed).toBe(1);
    expect(r.commentError).toBeUndefined();
    const sent = api.requests.slice(n);
    expect(sent.filter((q) => q.operationId === 'repos/create-commit-status').map((q) => q.body)).toEqual([expect.objectContaining({ state: 'failure', context: 'cerro-torre/policy' })]);
    const body = sent.find((q) => ['issues/create-comment', 'issues/update-comment'].includes(q.operationId))!.body.body as string;
    expect(body.length).toBeLessThan(5_000);
    const line = body.split('\n').find((l) => l.startsWith('FAIL '))!;
    expect(line.length).toBeLessThanOrEqual(1_001);
    expect(line.endsWith('…')).toBe(true);
    // The fence is still longer than any backtick run inside it (runs of one here: three will do).
    expect(body).toContain('\n```\nFAIL ');
    expect(body.split('\n').filter((l) => l === '```')).toHaveLength(2);
    expect(api.errors).toEqual([]);
  });

  /** The starter repository copied to tmp/NAME and committed (the base revision of the impact table). */
  const committedCopy = async (name: string): Promise<string> => {
    const repo = join(tmp, name);
    await cp(TEMPLATE, repo, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { stdio: 'pipe' });
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'base');
    return repo;
  };

  it('reports a broken policy as a failure with its file:line and the impact of a tightened signer rule', async () => {
    const repo = await committedCopy('repo');
    const file = join(repo, 'policies', 'production', 'production.policy.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('sourceRepositoryOwnerUri: https://github.com/example-org', 'sourceRepositoryOwnerUri: https://github.com/example-org/billing'));

    const tightened = await run({ policies: join(repo, 'policies'), repoDir: repo, baseRef: 'HEAD', deployments: join(repo, 'deployments.example.json'), failOnDeny: true, notifier: notifier() });
    expect(tightened.ok).toBe(false);
    expect(tightened.diff?.counts['now-denied']).toBe(1);
    expect(tightened.markdown).toContain('| ⛔ prod-shop-1 | shop | production |');
    expect(tightened.description).toContain('1 deployment(s) would now be denied');
    // The same against a real fleet's export, larger than a policy file may be (its evidence carries SBOMs).
    await writeFile(join(repo, 'deployments.large.json'), withSbom(await readFile(join(repo, 'deployments.example.json'), 'utf8'), 8000));
    const large = await run({ policies: join(repo, 'policies'), repoDir: repo, baseRef: 'HEAD', deployments: join(repo, 'deployments.large.json'), failOnDeny: true, notifier: notifier() });
    expect([large.diff?.counts['now-denied'], large.diff?.counts.unchanged]).toEqual([1, 1]);

    await writeFile(file, text.replace('mode: strict', 'mode: enforce'));
    const broken = await run({ policies: join(repo, 'policies'), repoDir: repo, baseRef: 'HEAD', deployments: join(repo, 'deployments.example.json'), notifier: notifier() });
    expect(broken.ok).toBe(false);
    expect(broken.state).toBe('failure');
    expect(broken.markdown).toContain(`${file}:${text.split('\n').findIndex((l) => l.startsWith('mode:')) + 1}:7: error [schema] /mode`);
    expect(broken.diff).toBeUndefined();
    const statuses = api.requests.filter((r) => r.operationId === 'repos/create-commit-status');
    expect(statuses.at(-1)!.body.state).toBe('failure');
    expect(api.errors).toEqual([]);
  });

  it('a symlinked policies root is refused before anything under it is read; a missing one fails with a note: status and comment still posted', async () => {
    const ws = await mkdtemp(join(tmpdir(), 'ct-policy-root-'));
    const outside = await mkdtemp(join(tmpdir(), 'ct-policy-runner-'));
    const SECRET = 'c2VjcmV0dG9rZW4=';
    const cwd = process.cwd();
    try {
      // A file of the CI machine whose name the loader takes for a policy, and a suite beside it.
      await writeFile(join(outside, 'policy.yaml'), `[http]\n\textraheader = AUTHORIZATION: basic ${SECRET}\n`);
      await writeFile(join(outside, 'x.policy.yaml'), `name: "${SECRET}\n`);
      await mkdir(join(ws, 'repo', 'sub'), { recursive: true });
      await symlink(outside, join(ws, 'repo', 'policies'));
      process.chdir(join(ws, 'repo'));
      for (const policies of ['policies', 'policies/', join(ws, 'repo', 'policies'), 'sub/../policies']) {
        const n = api.requests.length;
        const r = await run({ policies, repoDir: '.', notifier: notifier() });
        expect([r.ok, r.state]).toEqual([false, 'failure']);
        expect(r.lint.issues.map((i) => i.kind)).toEqual(['root-symlink']);
        expect(r.tests.errors).toEqual([]);
        expect(r.markdown).toContain('[root-symlink]');
        expect(r.markdown).not.toContain(SECRET);
        expect(r.markdown).not.toContain('basic');
        expect(api.requests.slice(n).filter((q) => q.operationId === 'repos/create-commit-status').map((q) => q.body.state)).toEqual(['failure']);
      }
      // From a subdirectory, through `..`.
      process.chdir(join(ws, 'repo', 'sub'));
      expect((await run({ policies: '../policies' })).lint.issues.map((i) => i.kind)).toEqual(['root-symlink']);

      // No policies directory at all: a failed check with a note, not a throw without a report.
      const n = api.requests.length;
      const missing = await run({ policies: join(ws, 'no-such-policies'), notifier: notifier() });
      expect([missing.ok, missing.state]).toEqual([false, 'failure']);
      expect(missing.markdown).toContain('The policies could not be read (IO');
      expect(missing.description).toContain('policies unreadable');
      const sent = api.requests.slice(n);
      expect(sent.filter((q) => q.operationId === 'repos/create-commit-status').map((q) => q.body.state)).toEqual(['failure']);
      expect(sent.find((q) => q.operationId === 'issues/update-comment' || q.operationId === 'issues/create-comment')?.body.body).toContain('The policies could not be read');
    } finally {
      process.chdir(cwd);
      await rm(ws, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    }
    expect(api.errors).toEqual([]);
  });

  it('a base revision or a deployments export that cannot be read fails the check with a note: status and comment still posted', async () => {
    const repo = await committedCopy('unreadable');
    const cases = [
      { baseRef: 'no-such-revision', deployments: join(repo, 'deployments.example.json'), note: 'The base revision no-such-revision could not be read', short: 'base revision unreadable' },
      { baseRef: 'HEAD', deployments: join(repo, 'no-such-deployments.json'), note: 'The deployments export could not be read (IO', short: 'deployments unreadable' },
    ];
    for (const c of cases) {
      const n = api.requests.length;
      const r = await run({ policies: join(repo, 'policies'), repoDir: repo, baseRef: c.baseRef, deployments: c.deployments, notifier: notifier() });
      expect([r.ok, r.state, r.diff]).toEqual([false, 'failure', undefined]);
      expect(r.markdown).toContain(c.note);
      expect(r.description).toContain(c.short);
      const sent = api.requests.slice(n);
      expect(sent.filter((q) => q.operationId === 'repos/create-commit-status').map((q) => q.body.state)).toEqual(['failure']);
      const written = sent.find((q) => q.operationId === 'issues/update-comment' || q.operationId === 'issues/create-comment');
      expect(written?.body.body).toContain(c.note);
    }
    expect(api.errors).toEqual([]);
  });
});

describe('policy-check comment: only the token\'s own is the report; the status is posted whatever happens to it', () => {
  let api: GitHubApi;
  let comments: { id: number; body: string; login: string }[];
  let updateFails = false;
  // Whom the stand-in takes the token for.
  let tokenLogin = 'github-actions[bot]';
  const FAKE = `${COMMENT_MARKER}\n## Cerro Torre policy check: ✅ passed`;
  beforeAll(async () => {
    api = await startGitHubApi();
    comments = [
      { id: 8, body: FAKE, login: 'mallory' },
      { id: 9, body: `quoting: ${COMMENT_MARKER}`, login: 'some-other-app[bot]' },
    ];
    api.respond('users/get-authenticated', () => INTEGRATION_403);
    api.respond('repos/create-commit-status', (req) => ({ status: 201, body: statusJson(req, tokenLogin) }));
    api.respond('issues/list-comments', () => ({ status: 200, body: comments.map(commentJson) }));
    api.respond('issues/create-comment', (req) => {
      comments.push({ id: 100 + comments.length, body: req.body.body, login: tokenLogin });
      return { status: 201, body: commentJson(comments.at(-1)!) };
    });
    // An installation token may not edit someone else's comment: GitHub answers 403.
    api.respond('issues/update-comment', (req) => {
      const c = comments.find((x) => x.id === Number(req.params.comment_id))!;
      if (updateFails || c.login.toLowerCase() !== tokenLogin.toLowerCase()) return INTEGRATION_403;
      c.body = req.body.body;
      return { status: 200, body: commentJson(c) };
    });
  });
  afterAll(() => api.close());
  const notifier = (extra: { commentAuthor?: string } = {}) => gitHubNotifier({ token: 'ghs_test', baseUrl: api.url, owner: 'acme', repo: 'policies', sha: SHA, pr: 12, ...extra });
  const statuses = () => api.requests.filter((r) => r.operationId === 'repos/create-commit-status');

  it('a comment carrying the marker by anyone else is left alone: the bot writes its own, then updates that one', async () => {
    const first = await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier() });
    expect(first.comment).toEqual({ id: 102, created: true });
    expect(first.commentError).toBeUndefined();
    const second = await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier() });
    expect(second.comment).toEqual({ id: 102, created: false });
    expect(comments.slice(0, 2).map((c) => c.body)).toEqual([FAKE, `quoting: ${COMMENT_MARKER}`]);
    expect(api.requests.filter((r) => r.operationId === 'issues/update-comment').map((r) => r.params.comment_id)).toEqual(['102']);
    expect(statuses().map((r) => r.body.state)).toEqual(['success', 'success']);
    expect(api.errors).toEqual([]);
  });

  it('with a user\'s token (GET /user answers) or a named App bot, that login\'s comment is the report', async () => {
    tokenLogin = 'Mallory';
    api.respond('users/get-authenticated', () => ({ status: 200, body: { login: tokenLogin } }));
    // A token of mallory's own: her comment is the bot's (logins compare case-insensitively). The
    // status names its creator; without one (null), GET /user does.
    expect((await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier() })).comment).toEqual({ id: 8, created: false });
    api.respond('repos/create-commit-status', (req) => ({ status: 201, body: { ...statusJson(req, tokenLogin), creator: null } }));
    let n = api.requests.length;
    expect((await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier() })).comment).toEqual({ id: 8, created: false });
    expect(api.requests.slice(n).map((r) => r.operationId)).toContain('users/get-authenticated');
    api.respond('repos/create-commit-status', (req) => ({ status: 201, body: statusJson(req, tokenLogin) }));
    tokenLogin = 'some-other-app[bot]';
    api.respond('users/get-authenticated', () => INTEGRATION_403);
    n = api.requests.length;
    expect((await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier({ commentAuthor: 'some-other-app[bot]' }) })).comment).toEqual({ id: 9, created: false });
    expect(api.requests.slice(n).map((r) => r.operationId)).not.toContain('users/get-authenticated');
    tokenLogin = 'github-actions[bot]';
  });

  it('a status that cannot be posted does not lose the report; only a fork\'s 403 (its read-only token) leaves the check green', async () => {
    try {
      for (const c of [
        { fork: true, answer: INTEGRATION_403, ok: true },
        { fork: false, answer: INTEGRATION_403, ok: false },
        { fork: true, answer: { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } }, ok: false },
        { fork: false, answer: { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } }, ok: false },
      ]) {
        api.respond('repos/create-commit-status', () => c.answer);
        const n = api.requests.length;
        const r = await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier(), fork: c.fork });
        expect({ ok: r.ok, state: r.state, fork: r.statusError?.fork }).toEqual({ ok: c.ok, state: 'success', fork: c.ok });
        expect(r.statusError?.message).toContain(c.answer.body.message);
        // The check passed and says so; the comment is written all the same.
        expect(r.markdown).toContain('Cerro Torre policy check: ✅ passed');
        expect(r.comment).toBeDefined();
        expect(api.requests.slice(n).map((q) => q.operationId)).toEqual(expect.arrayContaining(['repos/create-commit-status', 'issues/list-comments']));
      }
    } finally {
      api.respond('repos/create-commit-status', (req) => ({ status: 201, body: statusJson(req, tokenLogin) }));
    }
  });

  it('a comment that cannot be written does not lose the status: it is posted, and the failure reported', async () => {
    updateFails = true;
    const n = statuses().length;
    const r = await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier() });
    expect(r.ok).toBe(true);
    expect(r.comment).toBeUndefined();
    expect(r.commentError?.message).toContain('Resource not accessible by integration');
    expect(statuses().slice(n).map((q) => q.body)).toEqual([expect.objectContaining({ state: 'success', context: 'cerro-torre/policy' })]);
  });
});

describe('policy-check comment with a GitHub App\'s installation token (no comment-author): the App\'s bot, named by the status it posts, owns the report', () => {
  let api: GitHubApi;
  let comments: { id: number; body: string; login: string }[];
  const APP_BOT = 'acme-ci[bot]';
  beforeAll(async () => {
    api = await startGitHubApi();
    // An earlier report by the workflow's GITHUB_TOKEN (another workflow, or before the App): not this token's.
    comments = [{ id: 5, body: `${COMMENT_MARKER}\n## Cerro Torre policy check: ✅ passed`, login: 'github-actions[bot]' }];
    // An installation token: GET /user is refused; GitHub names the App's bot as the creator of
    // what the token writes, statuses and comments alike; it may edit only its own comments.
    api.respond('users/get-authenticated', () => INTEGRATION_403);
    api.respond('repos/create-commit-status', (req) => ({ status: 201, body: statusJson(req, APP_BOT) }));
    api.respond('issues/list-comments', () => ({ status: 200, body: comments.map(commentJson) }));
    api.respond('issues/create-comment', (req) => {
      comments.push({ id: 100 + comments.length, body: req.body.body, login: APP_BOT });
      return { status: 201, body: commentJson(comments.at(-1)!) };
    });
    api.respond('issues/update-comment', (req) => {
      const c = comments.find((x) => x.id === Number(req.params.comment_id))!;
      if (c.login !== APP_BOT) return INTEGRATION_403;
      c.body = req.body.body;
      return { status: 200, body: commentJson(c) };
    });
  });
  afterAll(() => api.close());

  it('three runs leave exactly one report comment by the App\'s bot, created once and updated since; the other report untouched', async () => {
    const notifier = () => gitHubNotifier({ token: 'ghs_installation', baseUrl: api.url, owner: 'acme', repo: 'policies', sha: SHA, pr: 12 });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await run({ policies: join(TEMPLATE, 'policies'), notifier: notifier() }));
    // Before, the token was taken for github-actions[bot]: each run tried that comment (403) or posted a new one.
    expect(results.map((r) => r.comment)).toEqual([{ id: 101, created: true }, { id: 101, created: false }, { id: 101, created: false }]);
    expect(results.map((r) => r.commentError)).toEqual([undefined, undefined, undefined]);
    expect(comments.filter((c) => c.login === APP_BOT)).toHaveLength(1);
    expect(comments[0]).toMatchObject({ id: 5, login: 'github-actions[bot]', body: `${COMMENT_MARKER}\n## Cerro Torre policy check: ✅ passed` });
    expect(api.requests.filter((r) => r.operationId === 'issues/update-comment').map((r) => r.params.comment_id)).toEqual(['101', '101']);
    expect(api.requests.filter((r) => r.operationId === 'repos/create-commit-status')).toHaveLength(3);
    expect(api.requests.map((r) => r.operationId)).not.toContain('users/get-authenticated');
    expect(api.errors).toEqual([]);
  });
});
