/**
 * A host-name clash does not spend the one-time enrolment token.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { testServer } from './support.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';

describe('enrolment', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let admin: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
  });
  afterAll(() => server.close());

  const call = (method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const publicKey = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

  it('a name already enrolled answers 409 and leaves the token usable for another name', async () => {
    const mint = async () => ((await (await call('POST', '/api/v1/hosts/tokens', admin, { labels: {} })).json()) as { token: string }).token;
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token: await mint(), name: 'taken-host', publicKey: publicKey() })).status).toBe(201);
    const token = await mint();
    const clash = await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'taken-host', publicKey: publicKey() });
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'free-host', publicKey: publicKey() })).status).toBe(201);
    // Spent now: it enrols nothing more.
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token, name: 'third-host', publicKey: publicKey() })).status).toBe(401);
    // Without a valid token, a taken name is not disclosed: 401, not 409.
    expect((await call('POST', '/api/v1/hosts/enroll', undefined, { token: 'cte_unknown', name: 'taken-host', publicKey: publicKey() })).status).toBe(401);
  });
});
