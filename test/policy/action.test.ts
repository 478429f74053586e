import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

describe('policy-check action run()', () => {
  let api: GitHubApi;
  let tmp: string;
  let comments: { id: number; body: string }[];
  beforeAll(async () => {
    api = await startGitHubApi();
    tmp = await mkdtemp(join(tmpdir(), 'ct-policy-action-'));
    comments = [{ id: 7, body: 'an unrelated review comment' }];
    // The stand-in validates every request against GitHub's OpenAPI description; these responders
    // keep the comment thread as state so the second run must find and update the first comment.
    api.respond('issues/list-comments', () => ({ status: 200, body: comments.map((c) => ({ id: c.id, body: c.body, node_id: 'x', url: 'u', html_url: 'h', issue_url: 'i', user: null, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', author_association: 'MEMBER' })) }));
    api.respond('issues/create-comment', (req) => {
      comments.push({ id: 100 + comments.length, body: req.body.body });
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
      'GET /repos/acme/policies/issues/12/comments',
      'POST /repos/acme/policies/issues/12/comments',
      `POST /repos/acme/policies/statuses/${SHA}`,
      'GET /repos/acme/policies/issues/12/comments',
      'PATCH /repos/acme/policies/issues/comments/101',
      `POST /repos/acme/policies/statuses/${SHA}`,
    ]);
    const status = api.requests.find((r) => r.operationId === 'repos/create-commit-status')!;
    expect(status.body).toMatchObject({ state: 'success', context: 'cerro-torre/policy' });
    expect(api.errors).toEqual([]);
    expect(first.markdown.startsWith(COMMENT_MARKER)).toBe(true);
  });

  it('reports a broken policy as a failure with its file:line and the impact of a tightened signer rule', async () => {
    const repo = join(tmp, 'repo');
    await cp(TEMPLATE, repo, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { stdio: 'pipe' });
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'base');
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
});
