/**
 * Issue 6, the GitLab path: a GitLab push webhook (X-Gitlab-Token) → reconcile → bundle fetched
 * from a real local registry → verified → host runs it → GitLab commit status posted through
 * Gitbeaker to the local GitLab API stand-in (test/support/gitlab-api.ts), which refuses any
 * request the real API would refuse. A tampered bundle ends in a `failed` status naming the code.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { startGitlabApi, GITLAB_STATUS_STATES, type GitlabApi, type GitlabStatusCall } from '../support/gitlab-api.js';
import { loopFixture, startTestHost, until, type LoopFixture, type TestHost } from '../e2e/fixture.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

const HOOK_TOKEN = 'gitlab-hook-token';
const API_TOKEN = 'glpat-server-token';
const PROJECT = 'group/desired';
const PUBLIC_URL = 'https://ct.example.test';

/** A push event as GitLab sends it (https://docs.gitlab.com/user/project/integrations/webhook_events/#push-events). */
function pushEvent(before: string, after: string): Record<string, unknown> {
  return {
    object_kind: 'push', event_name: 'push', before, after, ref: 'refs/heads/main', ref_protected: true, checkout_sha: after,
    user_id: 4, user_name: 'CI', user_username: 'ci', project_id: 15,
    project: { id: 15, name: 'desired', path_with_namespace: PROJECT, default_branch: 'main', web_url: 'https://gitlab.example.test/group/desired' },
    commits: [{ id: after, message: 'deploy', title: 'deploy', added: [], modified: ['deploy/state.yaml'], removed: [] }],
    total_commits_count: 1, repository: { name: 'desired', homepage: 'https://gitlab.example.test/group/desired' },
  };
}

describe('GitLab: push webhook → deploy → commit status through Gitbeaker', () => {
  let fx: LoopFixture;
  let gitlab: GitlabApi;
  let server: RunningServer;
  let host: TestHost;
  let previous = '0'.repeat(40);
  /** The head committed by the first test, pushed with the right token by the second. */
  let head = '';

  const hook = async (sha: string, token = HOOK_TOKEN, uuid = randomUUID()) => {
    const res = await fetch(`${server.url}/webhooks/gitlab`, {
      method: 'POST', body: JSON.stringify(pushEvent(previous, sha)),
      headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': token, 'x-gitlab-event-uuid': uuid },
    });
    return res.status;
  };
  const statuses = (sha: string) => gitlab.statuses.filter((s) => s.sha === sha);
  const finals = (sha: string) => statuses(sha).filter((s) => s.body.state !== 'pending' && s.body.state !== 'running');

  /** Every status call has the documented shape, for our project, with our token. */
  const checkShape = (s: GitlabStatusCall) => {
    expect(s.projectId).toBe(PROJECT);
    expect(s.auth).toBe(API_TOKEN);
    expect(GITLAB_STATUS_STATES).toContain(s.body.state);
    expect(s.body.name).toBe('cerro-torre/deploy/production');
    expect(String(s.body.description).length).toBeGreaterThan(0);
    expect(String(s.body.description).length).toBeLessThanOrEqual(255);
    expect(String(s.body.target_url)).toMatch(new RegExp(`^${PUBLIC_URL}/api/v1/deployments/[0-9a-f-]{36}$`));
  };

  beforeAll(async () => {
    [fx, gitlab] = await Promise.all([loopFixture(), startGitlabApi({ token: API_TOKEN })]);
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: `${fx.dir}/server`, policies: fx.policiesDir, trustStore: fx.trustStorePath, publicUrl: PUBLIC_URL,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
      gitlab: { apiUrl: gitlab.url, token: API_TOKEN, webhookTokens: ['rotated-old-token', HOOK_TOKEN], allowedAddresses: ['127.0.0.1'] },
      desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'gitlab', repository: PROJECT } },
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 60_000 }) });
    host = await startTestHost(server.url, (await createApiKey(server.ctx.db, 'admin', 'admin')).key, fx);
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await server?.close();
    await gitlab?.close();
    await fx?.cleanup();
  });

  it('refuses a push hook with a wrong token and reports nothing', async () => {
    const sha = (head = fx.commit({ hello: await fx.refs.good() }, 'deploy hello'));
    expect(await hook(sha, 'not-the-token')).toBe(401);
    expect(await hook(sha, '')).toBe(401);
    await new Promise((r) => setTimeout(r, 500));
    expect(statuses(sha)).toEqual([]);
    expect(await host.runtime.list()).toEqual([]);
  });

  it('deploys on a push hook and posts running then success to GitLab', async () => {
    const sha = head;
    const uuid = randomUUID();
    expect(await hook(sha, HOOK_TOKEN, uuid)).toBe(202);
    previous = sha;
    const [final] = await until('final GitLab status', () => finals(sha).length > 0 && finals(sha), 45_000);
    expect(final.body.state).toBe('success');
    expect(String(final.body.description)).toMatch(/^hello: succeeded\b/);
    // The deploy announced itself before it finished, and every call had the documented shape.
    expect(statuses(sha)[0].body.state).toBe('running');
    for (const s of statuses(sha)) checkShape(s);
    // The same delivery again changes nothing.
    const posted = statuses(sha).length;
    expect(await hook(sha, HOOK_TOKEN, uuid)).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(statuses(sha)).toHaveLength(posted);
    expect(finals(sha)).toHaveLength(1);
    expect(gitlab.errors).toEqual([]);
    expect(fx.github.requests).toEqual([]);
    expect((await host.runtime.list()).find((c) => c.id === containerIdFor('production', 'hello'))?.status).toBe('running');
  }, 60_000);

  it('posts failed naming the code for a tampered bundle, and never runs it', async () => {
    const before = (await host.runtime.list()).map((c) => `${c.id}:${c.imageDigest}:${c.status}`);
    const sha = fx.commit({ hello: fx.refs.tampered }, 'deploy tampered');
    expect(await hook(sha)).toBe(202);
    previous = sha;
    const [final] = await until('final GitLab status', () => finals(sha).length > 0 && finals(sha), 45_000);
    expect(final.body.state).toBe('failed');
    expect(String(final.body.description)).toMatch(/^hello: denied \((DIGEST_MISMATCH|UNCOVERED_FILE)\)/);
    for (const s of statuses(sha)) checkShape(s);
    expect(gitlab.errors).toEqual([]);
    expect((await host.runtime.list()).map((c) => `${c.id}:${c.imageDigest}:${c.status}`)).toEqual(before);
  }, 60_000);
});
