/**
 * #13 finding 2 for transparency-log answers: a log is authenticated by its signatures, which are
 * checked after its answer is parsed, so the answer itself is bounded first: at most 16 MiB (the
 * stream dropped past that, never read to its end) and the JSON depth limit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchConsistencyProof, submitToLogs } from '../../src/tlog/index.js';
import { entryN } from './fixtures.js';

let server: Server;
let url: string;
let answer: (res: ServerResponse) => void = (res) => void res.writeHead(404).end();
let sent = 0;

/** 512 MiB of spaces, written only as fast as the client reads. */
function endless(res: ServerResponse): void {
  sent = 0;
  res.writeHead(200, { 'content-type': 'application/json' });
  const chunk = Buffer.alloc(64 * 1024, ' ');
  const more = (): void => {
    while (sent < 512 * 1024 * 1024) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}
const deep = (res: ServerResponse) => void res.writeHead(200, { 'content-type': 'application/json' }).end(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    answer(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('log answers are bounded before they are parsed', () => {
  it('a proof answer of 512 MiB or nested 100,000 deep: NETWORK_ERROR, the stream dropped', async () => {
    answer = endless;
    await expect(fetchConsistencyProof(url, 1, 2, { retries: 0 })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    answer = deep;
    await expect(fetchConsistencyProof(url, 1, 2, { retries: 0 })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
  });

  it('a submission answered with 512 MiB or deep JSON: that log fails (NETWORK_ERROR), nothing throws', async () => {
    for (const a of [endless, deep]) {
      answer = a;
      const [r] = await submitToLogs(entryN(1), [{ id: 'log-x', url }], { retries: 0 });
      expect({ ok: r.ok, code: r.ok ? null : r.code }).toEqual({ ok: false, code: 'NETWORK_ERROR' });
    }
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });
});
