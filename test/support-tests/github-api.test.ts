import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Octokit } from '@octokit/rest';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';

describe('GitHub API stand-in', () => {
  let api: GitHubApi;
  let octokit: Octokit;
  beforeAll(async () => {
    api = await startGitHubApi();
    octokit = new Octokit({ baseUrl: api.url, auth: 'ghs_test', request: { retries: 0 } });
  });
  afterAll(() => api.close());

  it('accepts a valid commit status from the real Octokit and answers with the recorded example', async () => {
    const res = await octokit.rest.repos.createCommitStatus({ owner: 'acme', repo: 'app', sha: 'a'.repeat(40), state: 'success', context: 'cerro-torre/build' });
    expect(res.status).toBe(201);
    expect(res.data.state).toBeDefined();
    const rec = api.requests.at(-1)!;
    expect(rec.operationId).toBe('repos/create-commit-status');
    expect(rec.body).toEqual({ state: 'success', context: 'cerro-torre/build' });
    expect(api.errors).toEqual([]);
  });

  it('rejects a request that GitHub would reject (state outside the enum)', async () => {
    await expect(
      octokit.request('POST /repos/{owner}/{repo}/statuses/{sha}', { owner: 'acme', repo: 'app', sha: 'abc', state: 'green' as 'success' }),
    ).rejects.toMatchObject({ status: 422 });
    expect(api.errors.some((e) => e.includes('state'))).toBe(true);
  });

  it('rejects an unknown route', async () => {
    await expect(octokit.request('POST /repos/{owner}/{repo}/nonsense', { owner: 'a', repo: 'b' })).rejects.toMatchObject({ status: 422 });
  });
});
