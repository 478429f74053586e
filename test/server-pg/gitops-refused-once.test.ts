/**
 * A refused desired-state commit gets one failure status on PostgreSQL too: a replica that starts
 * after another posted it (or a restart) finds the claim in the database and does not post again;
 * replicas reconciling the same refused head at once post it once between them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

describe('GitOps on PostgreSQL: a refused commit is posted once across replicas and restarts', () => {
  let pg: Postgres;
  let github: GitHubApi;
  let dir: string;
  let operator: string;
  const env = { ...process.env, GIT_AUTHOR_NAME: 'ci', GIT_AUTHOR_EMAIL: 'ci@e', GIT_COMMITTER_NAME: 'ci', GIT_COMMITTER_EMAIL: 'ci@e' };
  const git = (args: string[]) => execFileSync('git', args, { cwd: join(dir, 'work'), encoding: 'utf8', env }).trim();
  const commit = (text: string) => {
    writeFileSync(join(dir, 'work/deploy/state.yaml'), text);
    git(['add', '.']);
    git(['commit', '-qm', 'broken']);
    git(['push', '-q', 'origin', 'HEAD:main']);
    return git(['rev-parse', 'HEAD']);
  };
  const start = (name: string) => startServer(loadConfig({}, {
    port: 0, host: '127.0.0.1', dataDir: join(dir, name), databaseUrl: pg.url,
    github: { apiUrl: github.url, token: 'ghs_servertoken', webhookSecrets: ['s'], allowedAddresses: ['127.0.0.1'] },
    desiredState: { repo: join(dir, 'desired.git'), branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
  } as never), { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx) });
  const refusals = (sha: string) => github.requests.filter((r) => r.operationId === 'repos/create-commit-status' && r.params.sha === sha);
  /** Asks `servers` to reconcile at once; waits until each request's reconcile is recorded and no reconcile job is left. */
  const reconcile = async (servers: RunningServer[], sha: string) => {
    const db = servers[0].ctx.db;
    const records = async () => Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM reconciles WHERE commit_sha = ?', [sha]))[0].n);
    const before = await records();
    for (const res of await Promise.all(servers.map((s) => fetch(`${s.url}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${operator}` } })))) expect(res.status).toBe(202);
    for (const end = Date.now() + 30_000; Date.now() < end && (await records()) === before; ) await new Promise((r) => setTimeout(r, 50));
    const jobs = async () => db.query("SELECT id FROM jobs WHERE kind = 'reconcile' AND state IN ('queued', 'running')");
    for (const end = Date.now() + 30_000; Date.now() < end && (await jobs()).length; ) await new Promise((r) => setTimeout(r, 50));
    expect(await records()).toBeGreaterThan(before);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-pg-refused-'));
    [pg, github] = await Promise.all([startPostgres(), startGitHubApi()]);
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(dir, 'desired.git')]);
    execFileSync('git', ['init', '-q', '-b', 'main', join(dir, 'work')]);
    git(['remote', 'add', 'origin', join(dir, 'desired.git')]);
    mkdirSync(join(dir, 'work/deploy'));
  }, 120_000);
  afterAll(async () => {
    await github?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a replica started after the status was posted (or a restart) does not post it again', async () => {
    const broken = commit('environments:\n  production:\n    apps: [\n');
    const a = await start('replica-a');
    operator = (await createApiKey(a.ctx.db, 'op', 'operator')).key;
    try {
      await reconcile([a], broken);
      for (const end = Date.now() + 20_000; Date.now() < end && !refusals(broken).length; ) await new Promise((r) => setTimeout(r, 50));
      expect(refusals(broken)).toHaveLength(1);
    } finally {
      await a.close();
    }
    const b = await start('replica-b');
    try {
      await reconcile([b], broken);
      expect(refusals(broken)).toHaveLength(1);
    } finally {
      await b.close();
    }
  }, 90_000);

  it('two replicas reconciling a new refused head together post it once', async () => {
    const [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
    try {
      const broken = commit('environments:\n  production:\n    apps: {\n');
      await reconcile([a, b], broken);
      await reconcile([b, a], broken);
      for (const end = Date.now() + 20_000; Date.now() < end && !refusals(broken).length; ) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      expect(refusals(broken)).toHaveLength(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 90_000);
});
