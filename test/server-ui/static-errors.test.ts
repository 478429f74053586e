/**
 * Errors raised by middleware rather than our code (the dashboard's static files, the JSON body
 * parser) answer a fixed code and message by status: serve-static's message for a missing file
 * named the server's install path (`ENOENT: …, stat '/…/build/ui/nonexist'`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from '../server/support.js';
import { uiAssetsDir } from '../../server/ui/routes.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';

describe('errors from static files and body parsing', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let admin: string;
  const assets = uiAssetsDir();
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
  });
  afterAll(() => server.close());

  const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;

  it('a missing dashboard file is 404 NOT_FOUND without the install path', async () => {
    // The dashboard must be built (npm test builds it): without it /ui/ is not served at all.
    expect(assets).toBeDefined();
    expect((await fetch(`${server.url}/ui/app.js`)).status).toBe(200);
    const r = await fetch(`${server.url}/ui/nonexist`);
    expect(r.status).toBe(404);
    const text = await r.text();
    expect(JSON.parse(text).error).toMatchObject({ code: 'NOT_FOUND', message: 'not found' });
    expect(text).not.toContain(assets!);
    expect(text).not.toMatch(/ENOENT|stat '|\/build\//);
  });

  it('a malformed or escaping /ui/ path answers a fixed message', async () => {
    for (const path of ['/ui/%E0%A4%A', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json']) {
      const r = await fetch(`${server.url}${path}`);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      const text = await r.text();
      expect(text).not.toContain(assets!);
      expect(text).not.toContain('package.json');
    }
  });

  it('a body in an unsupported charset is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const r = await fetch(`${server.url}/api/v1/deployments`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json; charset=latin1' }, body: '{}' });
    expect(r.status).toBe(415);
    expect(await errorOf(r)).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });
});
