/**
 * A dashboard session is as good as the sign-in issuer that made it. An operator who removes an
 * issuer from login.oidc (it was compromised, or is retired) and restarts expects its people signed
 * out; before, their sessions (and anyone's holding one of their cookies) kept their role until
 * they expired, up to sessionTtlSeconds later. Sessions of issuers still configured, and of
 * one-time links whose minter (here an API key) is still trusted, are kept. The check is made at
 * every read, from the answering server's configuration (test/server-pg/configured-trust.test.ts
 * for replicas configured differently).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type LoginIssuerConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';
import { createSession } from '../../server/ui/sessions.js';
import { createApiKey } from '../../server/auth/api-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'ct-session-issuers-'));
// Never contacted: no login is started here.
const issuer = (host: string): LoginIssuerConfig => ({ issuer: `https://${host}`, clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'admin' } });
const KEPT = issuer('kept.example');
const REMOVED = issuer('removed.example');

const start = (oidc: LoginIssuerConfig[]) =>
  startServer(loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, ...(oidc.length ? { login: { oidc } } : {}) }), { log: pino({ level: 'silent' }) });

describe('sessions of a removed sign-in issuer', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('end at the start that no longer configures their issuer; the others are kept', async () => {
    let server = await start([KEPT, REMOVED]);
    const ids: Record<string, string> = {};
    const key = await createApiKey(server.ctx.db, 'admin', 'admin');
    for (const [k, iss] of [['kept', KEPT.issuer], ['removed', REMOVED.issuer], ['link', `login-link:key:${key.id}`], ['old-link', 'login-link']]) {
      ids[k] = (await createSession(server.ctx.db, { subject: k, name: k, issuer: iss, role: 'admin' }, 3600_000)).id;
    }
    const status = async (k: string) => (await fetch(`${server.url}/api/v1/session`, { headers: { cookie: `__Host-ct_session=${ids[k]}` } })).status;
    for (const k of ['kept', 'removed', 'link']) expect([k, await status(k)]).toEqual([k, 200]);
    // A link session from before minters were recorded: who stands behind it is unknown.
    expect(await status('old-link')).toBe(401);
    await server.close();

    server = await start([KEPT]);
    try {
      expect(await status('removed')).toBe(401);
      expect(await status('kept')).toBe(200);
      expect(await status('link')).toBe(200);
    } finally {
      await server.close();
    }
    // No issuer at all: only one-time link sessions remain.
    server = await start([]);
    try {
      expect(await status('kept')).toBe(401);
      expect(await status('link')).toBe(200);
    } finally {
      await server.close();
    }
  });
});
