/**
 * Dashboard sessions on PostgreSQL (issue 12): one replica signs a person in, another replica of
 * the same database knows the session, the CSRF token and the role; sign-out on one ends it on
 * both; a session past its expiry is refused; and the overview grid and paged deployment list
 * answer with the same SQL as on SQLite.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { testServer } from '../server/support.js';
import { createSession } from '../../server/ui/sessions.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import type { RunningServer } from '../../server/start.js';

describe('dashboard sessions shared by replicas on PostgreSQL', () => {
  let pg: Postgres;
  let a: RunningServer;
  let b: RunningServer;
  beforeAll(async () => {
    pg = await startPostgres();
    // The sessions' issuer is configured on both (never contacted: no login is started here).
    const login = { oidc: [{ issuer: 'https://idp.test', clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'admin' as const } }] };
    a = await testServer({ databaseUrl: pg.url, login });
    b = await testServer({ databaseUrl: pg.url, login }, { extend: (ctx) => deployPipeline(ctx) });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
  });

  const session = async (server: RunningServer, id: string) => fetch(`${server.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${id}` } });

  it('shares sessions across replicas, ends them everywhere, and refuses expired ones', async () => {
    const s = await createSession(a.ctx.db, { subject: 'alice', name: 'Alice', issuer: 'https://idp.test', role: 'operator' }, 60_000);
    const onB = await session(b, s.id);
    expect(onB.status).toBe(200);
    expect(await onB.json()).toMatchObject({ kind: 'session', role: 'operator', csrfToken: s.csrf, can: { deploy: true, audit: false } });
    const out = await fetch(`${b.url}/auth/logout`, { method: 'POST', headers: { cookie: `__Host-ct_session=${s.id}`, 'x-csrf-token': s.csrf } });
    expect(out.status).toBe(204);
    expect((await session(a, s.id)).status).toBe(401);
    const old = await createSession(a.ctx.db, { subject: 'bob', name: 'Bob', issuer: 'https://idp.test', role: 'viewer' }, 1);
    await new Promise((r) => setTimeout(r, 5));
    expect((await session(b, old.id)).status).toBe(401);
  });

  it('answers the overview and the paged deployment list', async () => {
    const now = Date.now();
    for (let i = 0; i < 5; i++) {
      await a.ctx.db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, hosts, created_at, updated_at) VALUES (?, 'prod', ?, ?, 'r/x@sha256:${'0'.repeat(64)}', ?, '{}', ?, ?)`,
        [`d${i}`, `app${i % 2}`, `c${i}`, i === 4 ? 'verifying' : 'succeeded', now + i, now + i]);
    }
    const s = await createSession(a.ctx.db, { subject: 'v', name: 'V', issuer: 'https://idp.test', role: 'viewer' }, 60_000);
    const get = async (path: string) => (await fetch(`${b.url}${path}`, { headers: { cookie: `__Host-ct_session=${s.id}` } })).json() as Promise<Record<string, unknown>>;
    const grid = (await get('/api/v1/overview?limit=1')) as { apps: { app: string; environments: Record<string, { sync: string; last: { id: string } }> }[]; next: string };
    expect(grid.apps.map((x) => x.app)).toEqual(['app0']);
    expect(grid.apps[0].environments.prod).toMatchObject({ sync: 'progressing', last: { id: 'd4' } });
    expect((await get(`/api/v1/overview?after=${grid.next}`)).apps).toMatchObject([{ app: 'app1', environments: { prod: { last: { id: 'd3' } } } }]);
    const page1 = (await get('/api/v1/deployments?limit=2')) as { deployments: { id: string }[]; next: string };
    expect(page1.deployments.map((d) => d.id)).toEqual(['d4', 'd3']);
    const page2 = (await get(`/api/v1/deployments?limit=2&before=${page1.next}`)) as { deployments: { id: string }[] };
    expect(page2.deployments.map((d) => d.id)).toEqual(['d2', 'd1']);
  });
});
