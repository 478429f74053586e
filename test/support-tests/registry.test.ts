/**
 * The test registry helper when its port is taken before docker-registry binds it (a parallel
 * test's server got the same free port): it must neither hang on a server that accepts and never
 * answers, nor take another server's answer for its registry's.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(r: TestRegistry): Promise<TestRegistry> {
  cleanups.push(() => r.stop());
  return r;
}

describe('startRegistry on a taken port', () => {
  it('a server on the port that accepts and never answers: the registry starts on another port, without waiting on it', async () => {
    const port = await freePort();
    const held: Socket[] = [];
    const srv = createServer((s) => void held.push(s));
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { held.forEach((s) => s.destroy()); srv.close(() => r()); }));
    const t0 = Date.now();
    const reg = await started(await startRegistry({ port }));
    expect(reg.port).not.toBe(port);
    expect(held.length).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(12_000);
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);
  }, 30_000);

  it('another registry-like server on the port answering 200: it is not taken for the registry started', async () => {
    const port = await freePort();
    const srv = createHttpServer((_req, res) => res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}'));
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }));
    const reg = await started(await startRegistry({ port, auth: { username: 'u', password: 'p' } }));
    expect(reg.port).not.toBe(port);
    // The registry it returned is the one with htpasswd auth, not the open stand-in.
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(401);
  }, 30_000);
});
