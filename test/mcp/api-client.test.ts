/**
 * The API client the MCP tools call the deploy server with: one MCP request's calls are queued a
 * few at a time, and all of them end when the MCP client goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../src/mcp/api-client.js';

describe('MCP ApiClient', () => {
  let api: Server;
  let base: string;
  let inFlight = 0;
  let peak = 0;
  let received = 0;
  let closedEarly = 0;
  let delayMs = 150;
  const paths: string[] = [];
  beforeAll(async () => {
    // Each answer takes a while: long enough for every call of a batch to be in flight together.
    api = createServer((req, res) => {
      received++;
      paths.push(req.url ?? '');
      peak = Math.max(peak, ++inFlight);
      const t = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), delayMs);
      res.on('close', () => {
        inFlight--;
        clearTimeout(t);
        if (!res.writableFinished) closedEarly++;
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => api.close(() => r())));
  const reset = () => void ((peak = 0), (received = 0), (closedEarly = 0));

  it('keeps the base URL\'s path (a server behind a proxy at /deploy/) and never leaves its origin', async () => {
    paths.length = 0;
    await new ApiClient(`${base}/deploy/`, 'ctk_x').get('/api/v1/hosts', { query: { limit: 2 } });
    await new ApiClient(`${base}/deploy`, 'ctk_x').delete('/api/v1/api-keys/x');
    expect(paths).toEqual(['/deploy/api/v1/hosts?limit=2', '/deploy/api/v1/api-keys/x']);
    await expect(new ApiClient(base, 'ctk_x').get('//evil.example/steal')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('a batch of 40 calls reaches the server at most 4 at a time, and every call is answered', async () => {
    reset();
    const client = new ApiClient(base, 'ctk_x');
    const out = await Promise.all(Array.from({ length: 40 }, () => client.get('/api/v1/hosts')));
    expect(out.every((o) => o.ok === true)).toBe(true);
    expect(received).toBe(40);
    expect(peak).toBeLessThanOrEqual(4);
  }, 30_000);

  it('when the MCP client goes away, calls in flight are cut and queued ones never sent', async () => {
    reset();
    delayMs = 10_000;
    const gone = new AbortController();
    const client = new ApiClient(base, 'ctk_x', { signal: gone.signal });
    const calls = Array.from({ length: 20 }, () => client.get('/api/v1/hosts').then(() => 'answered', (e: { code?: string }) => e.code));
    for (let i = 0; i < 100 && received < 4; i++) await new Promise((r) => setTimeout(r, 10));
    gone.abort();
    expect(new Set(await Promise.all(calls))).toEqual(new Set(['CANCELLED']));
    // The server sees the cut connections close (never an answer written): polled, the machine may be busy.
    for (let i = 0; i < 100 && closedEarly < received; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toBeLessThanOrEqual(4);
    expect(closedEarly).toBe(received);
  }, 30_000);

  it('a POST cut after it was sent is OUTCOME_UNKNOWN (the server may have acted), a GET CANCELLED', async () => {
    reset();
    delayMs = 10_000;
    const gone = new AbortController();
    const client = new ApiClient(base, 'ctk_x', { signal: gone.signal });
    const post = client.post('/api/v1/deployments/dep-1/rollback').then(() => 'answered', (e: { code?: string }) => e.code);
    const get = client.get('/api/v1/hosts').then(() => 'answered', (e: { code?: string }) => e.code);
    for (let i = 0; i < 100 && received < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received).toBe(2);
    gone.abort();
    expect(await post).toBe('OUTCOME_UNKNOWN');
    expect(await get).toBe('CANCELLED');
  }, 30_000);
});
