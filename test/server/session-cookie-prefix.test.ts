/**
 * The dashboard's cookies carry the `__Host-` prefix: a browser takes them only from this origin,
 * Secure, Path=/, without Domain, so a sibling subdomain or a plain-HTTP page cannot plant a
 * session of its own (cookie tossing: the victim then acts inside the attacker's session). The
 * server reads only the prefixed name: the same session id under the old, plantable name is not a
 * session.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { createSession, setCookie, SESSION_COOKIE, LOGIN_COOKIE } from '../../server/ui/sessions.js';
import type { RunningServer } from '../../server/start.js';

const IDP = { issuer: 'https://idp.test', clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'admin' as const } };

describe('session cookies', () => {
  let server: RunningServer;
  beforeAll(async () => void (server = await testServer({ login: { oidc: [IDP] } })));
  afterAll(async () => server?.close());

  it('are set with what the __Host- prefix requires', () => {
    for (const name of [SESSION_COOKIE, LOGIN_COOKIE]) {
      expect(name.startsWith('__Host-')).toBe(true);
      const attrs = setCookie(name, 'v', 60).split(';').map((a) => a.trim().toLowerCase());
      expect(attrs).toEqual(expect.arrayContaining(['secure', 'path=/']));
      expect(attrs.some((a) => a.startsWith('domain='))).toBe(false);
    }
  });

  it('are read only under the prefixed name', async () => {
    const s = await createSession(server.ctx.db, { subject: 'alice', name: 'Alice', issuer: IDP.issuer, role: 'viewer' }, 60_000);
    const as = async (cookie: string) => (await fetch(`${server.url}/api/v1/session`, { headers: { cookie } })).status;
    expect(await as(`__Host-ct_session=${s.id}`)).toBe(200);
    expect(await as(`ct_session=${s.id}`)).toBe(401);
  });
});
