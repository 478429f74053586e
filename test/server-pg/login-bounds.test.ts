/**
 * The cap on dashboard logins in progress holds over replicas of one PostgreSQL database: it
 * counts every replica's logins, and the conditional insert (its CASTs) runs on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
import { testServer } from '../server/support.js';
import type { RunningServer } from '../../server/start.js';

describe('dashboard logins in progress capped over replicas on PostgreSQL', () => {
  let pg: Postgres;
  let provider: LoginProvider;
  let a: RunningServer;
  let b: RunningServer;
  beforeAll(async () => {
    pg = await startPostgres();
    provider = await startLoginProvider({ alice: { name: 'Alice', groups: ['ops'] } });
    const login = { oidc: [{ issuer: provider.issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'operator' as const } }], allowedAddresses: ['127.0.0.1'], maxPendingLogins: 2 };
    a = await testServer({ databaseUrl: pg.url, login });
    b = await testServer({ databaseUrl: pg.url, login });
    provider.configure([`${a.url}/auth/callback`, `${b.url}/auth/callback`]);
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await provider?.close();
    await pg?.stop();
  });

  const start = async (server: RunningServer) => {
    const res = await fetch(`${server.url}/auth/login?issuer=0`, { redirect: 'manual' });
    return { status: res.status, code: /data-code>([A-Z_]+)</.exec(await res.text())?.[1] ?? '', retryAfter: res.headers.get('retry-after') };
  };

  it('counts the logins of every replica and refuses past the cap without storing', async () => {
    expect((await start(a)).status).toBe(302);
    expect((await start(b)).status).toBe(302);
    for (const s of [a, b, a]) expect(await start(s)).toMatchObject({ status: 503, code: 'LOGIN_BUSY', retryAfter: expect.stringMatching(/^[1-9][0-9]*$/) });
    const [{ n }] = await a.ctx.db.query<{ n: string }>('SELECT COUNT(*) AS n FROM ui_logins');
    expect(Number(n)).toBe(2);
    const [idx] = await a.ctx.db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'ui_logins' AND indexname = 'ui_logins_expires'");
    expect(idx?.indexname).toBe('ui_logins_expires');
  });
});
