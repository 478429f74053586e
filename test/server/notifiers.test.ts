/**
 * The deploy-status notifiers reach GitHub/GitLab only through the project's one URL guard
 * (src/promote/forge-http.ts over src/oci/guard.ts): an API URL on a loopback or private address
 * (by IP literal or by a name that resolves there) is refused with NOTIFY_URL_NOT_ALLOWED before
 * any connection is opened; allow-listed, the same notifier reaches the local stand-ins (GitHub's
 * requests checked against its OpenAPI description).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:net';
import { GitHubNotifier } from '../../server/notifiers/github.js';
import { GitLabNotifier } from '../../server/notifiers/gitlab.js';
import type { DeployEvent } from '../../server/deploy/status.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { startGitlabApi, type GitlabApi } from '../support/gitlab-api.js';

let trap: Server;
let trapPort: number;
let connections = 0;
let github: GitHubApi;
let gitlab: GitlabApi;

beforeAll(async () => {
  // Counts every TCP connection: a refused notifier must open none.
  trap = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
  trapPort = (trap.address() as { port: number }).port;
  github = await startGitHubApi();
  gitlab = await startGitlabApi({ token: 'glpat-notifier-test' });
});
afterAll(async () => {
  trap?.close();
  await github?.close();
  await gitlab?.close();
});

const event = (provider: 'github' | 'gitlab'): DeployEvent => ({
  deploymentId: 'dep-1', repository: provider === 'github' ? 'acme/desired' : 'acme/desired', provider, sha: 'a'.repeat(40),
  environment: 'production', app: 'hello', bundle: 'hello:1.0.0', status: 'succeeded', description: 'deployed',
});
const state = () => {
  const m = new Map<string, string>();
  return { get: async (id: string, k: string) => m.get(`${id}/${k}`), set: async (id: string, k: string, v: string) => void m.set(`${id}/${k}`, v) };
};

describe('deploy-status notifiers and the URL guard', () => {
  it('refuse a loopback API URL (IP literal or a name resolving there) before connecting', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const gh = new GitHubNotifier({ apiUrl: `http://${host}:${trapPort}`, token: 'ghs_x' }, state());
      await expect(gh.post(event('github'))).rejects.toMatchObject({ code: 'NOTIFY_URL_NOT_ALLOWED' });
      await gh.close();
      const gl = new GitLabNotifier({ apiUrl: `http://${host}:${trapPort}`, token: 'glpat-x' });
      await expect(gl.post(event('gitlab'))).rejects.toMatchObject({ code: 'NOTIFY_URL_NOT_ALLOWED' });
      await gl.close();
    }
    expect(connections).toBe(0);
  });

  it('allow-listed, the same notifiers reach the stand-ins', async () => {
    github.respond('repos/list-deployments', () => ({ status: 200, body: [] }));
    const gh = new GitHubNotifier({ apiUrl: github.url, token: 'ghs_x', allowedAddresses: ['127.0.0.1'] }, state());
    await gh.post(event('github')).catch(() => undefined);
    await gh.close();
    expect(github.requests.length).toBeGreaterThan(0);
    expect(github.requests[0]).toMatchObject({ method: 'POST', operationId: 'repos/create-commit-status', body: { state: 'success', context: 'cerro-torre/deploy/production' } });
    expect(github.errors).toEqual([]);
    const gl = new GitLabNotifier({ apiUrl: gitlab.url, token: 'glpat-notifier-test', allowedAddresses: ['127.0.0.1'] });
    await gl.post(event('gitlab'));
    await gl.close();
    expect(gitlab.statuses.at(-1)).toMatchObject({ sha: 'a'.repeat(40), body: { state: 'success' } });
    expect(gitlab.errors).toEqual([]);
  });
});
