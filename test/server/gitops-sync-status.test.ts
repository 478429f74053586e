import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { testServer } from './support.js';
import { loadConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

/**
 * A team used to Argo CD pushes a desired-state commit the server will not apply (a YAML error, a
 * rewritten history): the commit gets a failure status saying why (file:line:column), and
 * GET /api/v1/sync says which commit is in force and what the last reconcile did.
 */
describe('GitOps: a refused desired-state commit is visible (commit status, GET /api/v1/sync)', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let github: GitHubApi;
  let dir: string;
  let operator: string;
  let viewer: string;
  const env = { ...process.env, GIT_AUTHOR_NAME: 'ci', GIT_AUTHOR_EMAIL: 'ci@e', GIT_COMMITTER_NAME: 'ci', GIT_COMMITTER_EMAIL: 'ci@e' };
  const git = (args: string[]) => execFileSync('git', args, { cwd: join(dir, 'work'), encoding: 'utf8', env }).trim();
  const commit = (text: string, msg: string, force = false) => {
    writeFileSync(join(dir, 'work/deploy/state.yaml'), text);
    git(['add', '.']);
    git(['commit', '-qm', msg]);
    git(['push', '-q', ...(force ? ['--force'] : []), 'origin', 'HEAD:main']);
    return git(['rev-parse', 'HEAD']);
  };
  type Status = { configured: boolean; applied: { commit: string } | null; last: { commit: string; outcome: string; message: string | null } | null };
  const status = async (token = viewer) => {
    const res = await fetch(`${server.url}/api/v1/sync`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as Status;
  };
  /** Asks for a reconcile and waits until the last one is of `commit`. */
  const sync = async (commit: string): Promise<Status> => {
    expect((await fetch(`${server.url}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } })).status).toBe(202);
    for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      const s = await status();
      if (s.last?.commit === commit) return s;
    }
    throw new Error(`no reconcile of ${commit}`);
  };
  const refusals = (sha: string) => github.requests.filter((r) => r.operationId === 'repos/create-commit-status' && r.params.sha === sha && r.body.context === 'cerro-torre/desired-state');
  /** The reconcile is recorded before its status is posted: waits for the status (and for the reconcile job to end). */
  const posted = async (sha: string) => {
    for (const end = Date.now() + 20_000; Date.now() < end && !refusals(sha).length; ) await new Promise((r) => setTimeout(r, 50));
    const jobs = async () => server.ctx.db.query("SELECT id FROM jobs WHERE kind = 'reconcile' AND state IN ('queued', 'running')");
    for (const end = Date.now() + 20_000; Date.now() < end && (await jobs()).length; ) await new Promise((r) => setTimeout(r, 50));
    return refusals(sha);
  };

  const desiredState = () => ({ repo: join(dir, 'desired.git'), branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github' as const, repository: 'acme/desired' } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-sync-status-'));
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(dir, 'desired.git')]);
    execFileSync('git', ['init', '-q', '-b', 'main', join(dir, 'work')]);
    git(['remote', 'add', 'origin', join(dir, 'desired.git')]);
    mkdirSync(join(dir, 'work/deploy'));
    github = await startGitHubApi();
    server = await testServer({
      github: { apiUrl: github.url, token: 'ghs_servertoken', webhookSecrets: ['s'], allowedAddresses: ['127.0.0.1'] },
      desiredState: desiredState(),
    } as never, { extend: (ctx) => deployPipeline(ctx) });
    operator = (await createApiKey(server.ctx.db, 'op', 'operator')).key;
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
  });
  afterAll(async () => {
    await server.close();
    await github.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says which commit is in force; a broken YAML commit keeps it, is named with file:line:column and gets one failure status', async () => {
    expect((await fetch(`${server.url}/api/v1/sync`)).status).toBe(401);
    const good = commit('environments:\n  production:\n    apps: {}\n', 'empty');
    const applied = await sync(good);
    expect(applied).toMatchObject({ configured: true, applied: { commit: good }, last: { commit: good, outcome: 'applied' } });

    const broken = commit('environments:\n  production:\n    apps:\n      hello: {bundle: x, bundle: y}\n', 'oops');
    const s = await sync(broken);
    expect(s.applied?.commit).toBe(good);
    expect(s.last).toMatchObject({ outcome: 'refused:INVALID_STATE', message: 'deploy/state.yaml:4:26: not valid YAML: Map keys must be unique' });
    const first = await posted(broken);
    expect(first).toHaveLength(1);
    expect(first[0].body).toMatchObject({ state: 'failure', description: 'refused (MANIFEST_INVALID): deploy/state.yaml:4:26: not valid YAML: Map keys must be unique' });

    // The next poll finds the same head refused again: no second status.
    await sync(broken);
    expect(await posted(broken)).toHaveLength(1);

  });

  it('a key with direction marks or controls is shown escaped in the status and GET /api/v1/sync', async () => {
    const broken = commit('environments:\n  production:\n    apps: {}\n    ev\u202eil: 1\n', 'bidi');
    const s = await sync(broken);
    expect(s.last?.message).toBe('deploy/state.yaml: environments.production.ev\\u202eil: unknown field (apps)');
    const [st] = await posted(broken);
    expect(st.body.description).toBe('refused (MANIFEST_INVALID): deploy/state.yaml: environments.production.ev\\u202eil: unknown field (apps)');
  });

  it('a commit git cannot read (a blob missing) is an error tried again, with no failure status; once readable it is applied', async () => {
    git(['reset', '-q', '--hard', (await status()).applied!.commit]);
    const head = commit('environments:\n  staging:\n    apps: {}\n', 'staging', true);
    const blob = git(['rev-parse', 'HEAD:deploy/state.yaml']);
    const file = join(dir, 'desired.git', 'objects', blob.slice(0, 2), blob.slice(2));
    expect(existsSync(file)).toBe(true);
    const content = readFileSync(file);
    unlinkSync(file);
    try {
      expect((await fetch(`${server.url}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } })).status).toBe(202);
      let last: Status['last'] = null;
      for (const end = Date.now() + 20_000; Date.now() < end && last?.outcome !== 'error'; await new Promise((r) => setTimeout(r, 50))) last = (await status()).last;
      expect(last).toMatchObject({ outcome: 'error', message: expect.stringContaining(`blob ${blob} is missing`) });
    } finally {
      writeFileSync(file, content);
    }
    const s = await sync(head);
    expect(s).toMatchObject({ applied: { commit: head }, last: { outcome: 'applied' } });
    expect(refusals(head)).toHaveLength(0);
  });

  it('an app removed (or renamed) in the desired state keeps running: drift lists it as undeclared and not in sync', async () => {
    // On from the commit in force (the broken one after it is left behind).
    git(['reset', '-q', '--hard', (await status()).applied!.commit]);
    const image = `sha256:${'a'.repeat(64)}`;
    const declares = commit(`environments:\n  production:\n    apps:\n      hello-v2:\n        bundle: registry.example/acme/hello@${image}\n`, 'hello renamed hello-v2', true);
    expect((await sync(declares)).applied?.commit).toBe(declares);
    // What ran before the rename (its deploy succeeded, from an earlier desired-state commit), the
    // new name's deploy, and an app deployed by the API (POST /api/v1/deployments), never declared.
    for (const [id, app, sha, t] of [['old', 'hello', 'b'.repeat(40), 1], ['new', 'hello-v2', 'd'.repeat(40), 2], ['api', 'worker', `api:${'c'.repeat(40)}:${image}`, 3]] as const) {
      await server.ctx.db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, image_digest, status, hosts, created_at, updated_at) VALUES (?, 'production', ?, ?, ?, ?, 'succeeded', ?, ?, ?)`, [id, app, sha, `registry.example/acme/hello@${image}`, image, JSON.stringify({ env: 'production' }), t, t]);
    }
    // A host runs all three (the old name's container was never stopped).
    const running = (apps: string[]) => JSON.stringify(apps.map((app) => ({ id: containerIdFor('production', app), imageDigest: image, state: 'running' })));
    await server.ctx.db.run('INSERT INTO hosts (id, name, public_key, labels, facts, containers, enrolled_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', ['h1', 'host-1', 'key', JSON.stringify({ env: 'production' }), '{}', running(['hello', 'hello-v2', 'worker']), Date.now(), Date.now()]);
    const drift = async () => (await (await fetch(`${server.url}/api/v1/drift`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { inSync: boolean; drift: unknown[]; undeclared: unknown[] };
    const grid = async () => {
      const o = (await (await fetch(`${server.url}/api/v1/overview`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { apps: { app: string; environments: Record<string, { sync: string }> }[] };
      return Object.fromEntries(o.apps.map((a) => [a.app, a.environments.production.sync]));
    };
    expect(await drift()).toEqual({ inSync: false, drift: [], suspended: [], undeclared: [{ environment: 'production', app: 'hello', deploymentId: 'old', hosts: ['host-1'] }] });
    // The overview says what drift says: the removed app still running is not in sync.
    expect(await grid()).toMatchObject({ hello: 'out-of-sync', worker: 'in-sync' });
    // Removed by hand (the container action): in sync, and no MISSING for a name nobody wants.
    await server.ctx.db.run('UPDATE hosts SET containers = ? WHERE id = ?', [running(['hello-v2', 'worker']), 'h1']);
    expect(await drift()).toEqual({ inSync: true, drift: [], suspended: [], undeclared: [] });
    expect(await grid()).toMatchObject({ hello: 'in-sync', worker: 'in-sync' });
    // The API-deployed app is compared as ever: its container gone is drift, the desired state notwithstanding.
    await server.ctx.db.run('UPDATE hosts SET containers = ? WHERE id = ?', [running(['hello-v2']), 'h1']);
    expect(await drift()).toEqual({ inSync: false, drift: [{ environment: 'production', app: 'worker', host: 'host-1', desired: image, actual: null, reason: 'MISSING' }], suspended: [], undeclared: [] });
    expect((await grid()).worker).toBe('out-of-sync');
    await server.ctx.db.run(`DELETE FROM deployments WHERE id IN ('old', 'new', 'api')`);
    await server.ctx.db.run(`DELETE FROM hosts WHERE id = 'h1'`);
  });

  it('a rewritten history (force-push) is refused with a status saying so, the applied commit stays in force', async () => {
    const applied = (await status()).applied!.commit;
    git(['checkout', '-q', '--orphan', 'rewritten']);
    const rewritten = commit('environments:\n  production:\n    apps: {}\n', 'history rewritten', true);
    const s = await sync(rewritten);
    expect(s.applied?.commit).toBe(applied);
    expect(s.last?.outcome).toBe('refused:NOT_DESCENDANT');
    const statuses = await posted(rewritten);
    expect(statuses).toHaveLength(1);
    expect(statuses[0].body.state).toBe('failure');
    expect(statuses[0].body.description).toBe(`refused (NOT_DESCENDANT): does not descend from the applied commit ${applied.slice(0, 12)} (history rewritten?): nothing applied`);

    // The floor reset (docs/server.md): the rewritten head is applied, and its failure is replaced by a success.
    await server.ctx.db.run('DELETE FROM gitops_state WHERE repo = ?', [join(dir, 'desired.git')]);
    expect((await fetch(`${server.url}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } })).status).toBe(202);
    for (const end = Date.now() + 20_000; Date.now() < end && (await status()).applied?.commit !== rewritten; ) await new Promise((r) => setTimeout(r, 50));
    expect(await status()).toMatchObject({ applied: { commit: rewritten }, last: { outcome: 'applied' } });
    for (const end = Date.now() + 20_000; Date.now() < end && refusals(rewritten).length < 2; ) await new Promise((r) => setTimeout(r, 50));
    expect(refusals(rewritten).map((r) => [r.body.state, r.body.description])).toEqual([['failure', statuses[0].body.description], ['success', 'applied (refused before)']]);
  });
});

describe('GET /api/v1/sync: a desired-state remote that carries a token', () => {
  it.each([
    ['in its user and password', 'http://x-access-token:ghs_SECRET0123456789@127.0.0.1:9/acme/desired.git', 'http://***@127.0.0.1:9/acme/desired.git'],
    ['in its query string', 'http://127.0.0.1:9/acme/desired.git?private_token=glpat-SECRET0123&x=SECRET', 'http://127.0.0.1:9/acme/desired.git?private_token=***&x=***'],
    ['in a password with quotes and <', "http://x:ab'SECRET\"cd<e@127.0.0.1:9/acme/desired.git", 'http://***@127.0.0.1:9/acme/desired.git'],
    ['in a query value with a quote', "http://127.0.0.1:9/acme/desired.git?private_token=ab'SECRET", 'http://127.0.0.1:9/acme/desired.git?private_token=***'],
    ['as a bare query token', 'http://127.0.0.1:9/acme/desired.git?glpat-SECRET', 'http://127.0.0.1:9/acme/desired.git?***'],
  ])('never shows the token (%s) to a viewer, in the repository or in a git error', async (_where, repo, shown) => {
    const server = await testServer({
      desiredState: { repo, branch: 'main', path: 'deploy', pollSeconds: 3600 },
    } as never, { extend: (ctx) => deployPipeline(ctx) });
    try {
      const viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
      const operator = (await createApiKey(server.ctx.db, 'op', 'operator')).key;
      expect((await fetch(`${server.url}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } })).status).toBe(202);
      let body = '';
      for (const end = Date.now() + 20_000; Date.now() < end && !body.includes('"outcome":"error"'); await new Promise((r) => setTimeout(r, 100))) {
        body = await (await fetch(`${server.url}/api/v1/sync`, { headers: { authorization: `Bearer ${viewer}` } })).text();
      }
      const status = JSON.parse(body) as { repository: string; last: { outcome: string; message: string } };
      expect(status.repository).toBe(shown);
      expect(status.last.outcome).toBe('error');
      expect(status.last.message).toContain(`git fetch failed for ${shown}`);
      expect(body).not.toContain('SECRET');
    } finally {
      await server.close();
    }
  });
});

describe('GitOps: the failure status of a refused commit is posted once, across a restart', () => {
  it('a restarted server finds the same refused head and does not post it again; a post that failed is tried at the next poll', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-sync-restart-'));
    const github = await startGitHubApi();
    const env = { ...process.env, GIT_AUTHOR_NAME: 'ci', GIT_AUTHOR_EMAIL: 'ci@e', GIT_COMMITTER_NAME: 'ci', GIT_COMMITTER_EMAIL: 'ci@e' };
    const git = (args: string[]) => execFileSync('git', args, { cwd: join(dir, 'work'), encoding: 'utf8', env }).trim();
    const start = () => startServer(loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'),
      github: { apiUrl: github.url, token: 'ghs_servertoken', webhookSecrets: ['s'], allowedAddresses: ['127.0.0.1'] },
      desiredState: { repo: join(dir, 'desired.git'), branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
    } as never), { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx) });
    try {
      execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(dir, 'desired.git')]);
      execFileSync('git', ['init', '-q', '-b', 'main', join(dir, 'work')]);
      git(['remote', 'add', 'origin', join(dir, 'desired.git')]);
      mkdirSync(join(dir, 'work/deploy'));
      writeFileSync(join(dir, 'work/deploy/state.yaml'), 'environments:\n  production:\n    apps: [\n');
      git(['add', '.']);
      git(['commit', '-qm', 'broken']);
      git(['push', '-q', 'origin', 'HEAD:main']);
      const broken = git(['rev-parse', 'HEAD']);
      const refusals = () => github.requests.filter((r) => r.operationId === 'repos/create-commit-status' && r.params.sha === broken);
      /** Reconciles on `server` and waits until its job ended with one more reconcile recorded. */
      const reconcile = async (server: Awaited<ReturnType<typeof start>>, operator: string) => {
        const records = async () => (await server.ctx.db.query('SELECT id FROM reconciles WHERE commit_sha = ?', [broken])).length;
        const before = await records();
        expect((await fetch(`${server.url}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } })).status).toBe(202);
        for (const end = Date.now() + 20_000; Date.now() < end && (await records()) === before; ) await new Promise((r) => setTimeout(r, 50));
        const jobs = async () => server.ctx.db.query("SELECT id FROM jobs WHERE kind = 'reconcile' AND state IN ('queued', 'running')");
        for (const end = Date.now() + 20_000; Date.now() < end && (await jobs()).length; ) await new Promise((r) => setTimeout(r, 50));
        expect(await records()).toBeGreaterThan(before);
      };
      const first = await start();
      const operator = (await createApiKey(first.ctx.db, 'op', 'operator')).key;
      // The forge refuses the first post (an outage): the claim must not keep the commit from its status.
      let failing = true;
      github.respond('repos/create-commit-status', () => (failing ? { status: 422, body: { message: 'outage' } } : undefined));
      try {
        await reconcile(first, operator);
        for (const end = Date.now() + 20_000; Date.now() < end && !refusals().length; ) await new Promise((r) => setTimeout(r, 50));
        const failed = refusals().length;
        expect(failed).toBeGreaterThanOrEqual(1);
        failing = false;
        for (const end = Date.now() + 5_000; Date.now() < end && (await first.ctx.db.query('SELECT repo FROM gitops_reported')).length; ) await new Promise((r) => setTimeout(r, 50));
        await reconcile(first, operator);
        for (const end = Date.now() + 20_000; Date.now() < end && refusals().length === failed; ) await new Promise((r) => setTimeout(r, 50));
        expect(refusals()).toHaveLength(failed + 1);
      } finally {
        await first.close();
      }
      const posted = refusals().length;
      const second = await start();
      try {
        await reconcile(second, operator);
        expect(refusals()).toHaveLength(posted);
      } finally {
        await second.close();
      }
    } finally {
      await github.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
