/**
 * The cap on dashboard logins in progress holds over replicas of one PostgreSQL database: a start
 * on any replica evicts the oldest logins of all of them, and the eviction (LIMIT/OFFSET
 * parameters in a subquery) runs on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { beginHttpLogin, endHttpLogin, nextMillisecond, startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
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

  it('a flood over every replica evicts the oldest logins: the table stays at the cap and a sign-in started after it completes', async () => {
    const rows = async () => Number((await a.ctx.db.query<{ n: string }>('SELECT COUNT(*) AS n FROM ui_logins'))[0].n);
    const early = await beginHttpLogin(provider, a.url, 'alice');
    expect((await start(b)).status).toBe(302);
    const flood = await Promise.all([a, b, a, b, a, b].map(start));
    expect(flood.map((r) => r.status)).toEqual([302, 302, 302, 302, 302, 302]);
    // Concurrent starts do not see each other's uncommitted rows, so the table may stand above the
    // cap by the starts that were in flight together; the next start evicts back down to it.
    expect(await rows()).toBeLessThanOrEqual(2 + flood.length);
    // Started after the flood (logins are ordered by the millisecond they started), with one start
    // on the other replica while at the issuer.
    await nextMillisecond();
    const later = await beginHttpLogin(provider, a.url, 'alice');
    expect(await rows()).toBe(2);
    expect((await start(b)).status).toBe(302);
    expect(await rows()).toBe(2);
    expect(await endHttpLogin(later)).toEqual({ status: 302, code: '', session: true });
    expect(await endHttpLogin(early)).toMatchObject({ status: 401, code: 'LOGIN_STATE_INVALID' });
    const [idx] = await a.ctx.db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'ui_logins' AND indexname = 'ui_logins_expires'");
    expect(idx?.indexname).toBe('ui_logins_expires');
  }, 60_000);
});
