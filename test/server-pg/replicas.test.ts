/**
 * Issue 6, storage: two deploy-server replicas on ONE PostgreSQL (`DATABASE_URL`). The host agent
 * connects to replica A only (the channel is per server process); either replica may claim a
 * deploy job, and a replica without a connected matching host hands the job to the replica that
 * has one (docs/server.md, "Several replicas"). Exactly once is asserted on what the GitHub
 * stand-in recorded and on the host's containers, not on database rows.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { MIGRATIONS } from '../../server/store/migrations.js';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { loopFixture, startTestHost, until, WEBHOOK_SECRET, type LoopFixture, type TestHost } from '../e2e/fixture.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

/** A signed GitHub push delivery with a chosen delivery id, so the same one can be replayed. */
async function push(url: string, sha: string, delivery: string): Promise<{ status: number; body: { status?: string } }> {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/desired' } });
  const res = await fetch(`${url}/webhooks/github`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}` },
  });
  return { status: res.status, body: (await res.json()) as { status?: string } };
}

describe('two server replicas on one PostgreSQL', () => {
  let pg: Postgres;
  let fx: LoopFixture;
  let a: RunningServer;
  let b: RunningServer;
  let host: TestHost;

  const start = (name: string) => {
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: join(fx.dir, name), databaseUrl: pg.url, policies: fx.policiesDir, trustStore: fx.trustStorePath,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
      github: { apiUrl: fx.github.url, token: 'ghs_servertoken', webhookSecrets: [WEBHOOK_SECRET], allowedAddresses: ['127.0.0.1'] },
      desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
    });
    return startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 60_000 }) });
  };

  const finalsFor = (sha: string, app: string) => fx.finalStatuses(sha).filter((s) => String(s.body.description).startsWith(`${app}:`));
  const createdFor = (sha: string, app: string) => fx.github.requests.filter((r) => r.operationId === 'repos/create-deployment' && r.body.ref === sha && r.body.payload?.app === app);

  beforeAll(async () => {
    [pg, fx] = await Promise.all([startPostgres(), loopFixture()]);
    // Both replicas start at once on an empty database: they race for the migrations.
    [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
    host = await startTestHost(a.url, (await createApiKey(a.ctx.db, 'admin', 'admin')).key, fx);
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await a?.close();
    await b?.close();
    await fx?.cleanup();
    await pg?.stop();
  });

  it('applies each migration exactly once when both replicas start concurrently', async () => {
    const rows = await a.ctx.db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((_m, i) => i + 1));
    // Both replicas answer, on the same schema.
    for (const s of [a, b]) expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
  });

  it('runs each deploy exactly once when the delivery reaches both replicas', async () => {
    const apps = { app1: await fx.refs.good('acme/app1'), app2: await fx.refs.good('acme/app2') };
    const sha = fx.commit(apps, 'two apps');
    const delivery = `replayed-${sha.slice(0, 12)}`;
    const [first, replay] = await Promise.all([push(a.url, sha, delivery), push(b.url, sha, delivery)]);
    // One of them records the delivery; the other sees it as a replay and changes nothing.
    expect([first.status, replay.status].sort()).toEqual([200, 202]);
    expect([first.body.status, replay.body.status].sort()).toEqual(['accepted', 'duplicate']);

    await until('a final status per app', () => Object.keys(apps).every((app) => finalsFor(sha, app).length > 0), 45_000);
    // Give a duplicate, if there were one, the chance to arrive before counting.
    await new Promise((r) => setTimeout(r, 1500));
    for (const app of Object.keys(apps)) {
      expect(finalsFor(sha, app).map((s) => s.body.state)).toEqual(['success']);
      expect(createdFor(sha, app)).toHaveLength(1);
    }
    expect(fx.github.errors).toEqual([]);
    const running = (await host.runtime.list()).filter((c) => c.status === 'running').map((c) => c.id).sort();
    expect(running).toEqual([containerIdFor('production', 'app1'), containerIdFor('production', 'app2')]);
  }, 60_000);

  it('hands a deploy claimed by the replica without the host to the replica that has it', async () => {
    // Replica A (the one the host is connected to) stops taking jobs: B claims the reconcile and
    // the deploy, cannot dispatch, and hands the deploy to A, which runs it once A is back.
    await a.ctx.queue.stop();
    const sha = fx.commit({ app1: await fx.refs.good('acme/app1'), app2: await fx.refs.good('acme/app2'), app3: await fx.refs.good('acme/app3') }, 'a third app');
    expect((await push(b.url, sha, `b-only-${sha.slice(0, 12)}`)).status).toBe(202);
    const handed = await until('deploy handed to A', async () => {
      const rows = await b.ctx.db.query<{ affinity: string | null }>(`SELECT affinity FROM jobs WHERE kind = 'deploy' AND payload LIKE '%' || ? || '%'`, [
        (await b.ctx.db.query<{ id: string }>('SELECT id FROM deployments WHERE commit_sha = ? AND app = ?', [sha, 'app3']))[0]?.id ?? 'none',
      ]);
      return rows[0]?.affinity ?? undefined;
    }, 20_000);
    expect(handed).toBe(a.ctx.queue.workerId);
    // Nothing reached the forge or the host while only B was working.
    expect(finalsFor(sha, 'app3')).toEqual([]);
    await a.ctx.queue.start();
    await until('app3 final status', () => finalsFor(sha, 'app3').length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(finalsFor(sha, 'app3').map((s) => s.body.state)).toEqual(['success']);
    expect(createdFor(sha, 'app3')).toHaveLength(1);
    // Only app3 changed in this commit.
    expect(finalsFor(sha, 'app1')).toEqual([]);
    expect(fx.github.errors).toEqual([]);
    expect((await host.runtime.list()).find((c) => c.id === containerIdFor('production', 'app3'))?.status).toBe('running');
  }, 60_000);
});
