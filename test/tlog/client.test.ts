// submitToLogs against real local logs: one log down (accepts connections, never answers),
// one refusing connections, transient 5xx answers retried with backoff, bad entries not retried.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalEntry, fetchCheckpoint, startLogServer, submitToLogs, verifyLogEntryRecord, type LogServer } from '../../src/tlog/index.js';
import { entryN } from './fixtures.js';

function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}
const closeServer = (s: Server): Promise<void> => new Promise((r) => { s.close(() => r()); s.closeAllConnections(); });

describe('submitToLogs', () => {
  let dir: string;
  let a: LogServer;
  let b: LogServer;
  let hanging: { server: Server; url: string };
  let flaky: { server: Server; url: string; hits: number };
  let deadUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-tlog-client-'));
    a = await startLogServer({ db: join(dir, 'a.db'), logId: 'log-a' });
    b = await startLogServer({ db: join(dir, 'b.db'), logId: 'log-b' });
    hanging = await listen(() => undefined); // never answers
    // Fails twice with 503, then forwards to log a.
    const f = { hits: 0 } as { server: Server; url: string; hits: number };
    const s = await listen(async (req, res) => {
      f.hits++;
      if (f.hits <= 2) {
        res.writeHead(503).end();
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const r = await fetch(`${a.url}${req.url}`, { method: req.method, headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text());
    });
    Object.assign(f, s);
    flaky = f;
    const dead = await listen(() => undefined);
    deadUrl = dead.url;
    await closeServer(dead.server); // nothing listens there any more
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), hanging && closeServer(hanging.server), flaky && closeServer(flaky.server)]);
    await rm(dir, { recursive: true, force: true });
  });

  it('returns one result per log, in order; a log that never answers times out without blocking the others', async () => {
    const entry = entryN(1);
    const t0 = Date.now();
    const results = await submitToLogs(
      entry,
      [
        { id: 'log-a', url: a.url, publicKey: a.publicKey },
        { id: 'hanging', url: hanging.url },
        { id: 'log-b', url: b.url, publicKey: b.publicKey },
        { id: 'dead', url: deadUrl },
      ],
      { timeoutMs: 300, retries: 1, backoffMs: 20 },
    );
    const elapsed = Date.now() - t0;
    expect(results.map((r) => r.id)).toEqual(['log-a', 'hanging', 'log-b', 'dead']);
    expect(results.map((r) => r.ok)).toEqual([true, false, true, false]);
    expect(results[1]).toMatchObject({ ok: false, code: 'NETWORK_ERROR', attempts: 2 });
    expect(results[3]).toMatchObject({ ok: false, code: 'NETWORK_ERROR', attempts: 2 });
    // two attempts of 300 ms plus one 20 ms backoff, run concurrently with the rest
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(5000);
    for (const [r, log] of [[results[0], a], [results[2], b]] as const) {
      if (!r.ok) throw new Error('expected success');
      expect(r.record.logId).toBe(log.logId);
      expect(verifyLogEntryRecord(r.record, canonicalEntry(entry), { operator: log.operator, publicKey: log.publicKey })).toMatchObject({ ok: true });
      expect(r.entryBytes.equals(canonicalEntry(entry))).toBe(true);
    }
  });

  it('retries transient 5xx answers with backoff and then succeeds', async () => {
    const [r] = await submitToLogs(entryN(2), [{ id: 'log-a', url: flaky.url, publicKey: a.publicKey }], { timeoutMs: 2000, retries: 3, backoffMs: 10 });
    expect(r).toMatchObject({ ok: true, attempts: 3 });
  });

  it('gives up after the retries it was allowed', async () => {
    flaky.hits = 0;
    const [r] = await submitToLogs(entryN(3), [{ id: 'log-a', url: flaky.url }], { timeoutMs: 2000, retries: 1, backoffMs: 10 });
    expect(r).toMatchObject({ ok: false, code: 'NETWORK_ERROR', status: 503, attempts: 2 });
  });

  it('stamps-by-log entries come back with the timestamp the log chose', async () => {
    const { timestamp: _t, ...bare } = entryN(4);
    const [r] = await submitToLogs(bare, [{ id: 'log-b', url: b.url, publicKey: b.publicKey }], { timeoutMs: 2000 });
    if (!r.ok) throw new Error(r.message);
    expect(r.entry.timestamp).toBe(r.record.integratedTime);
  });

  it('flags a record that does not verify under the configured key as LOG_PROOF_INVALID', async () => {
    const [r] = await submitToLogs(entryN(5), [{ id: 'log-a', url: a.url, publicKey: b.publicKey }], { timeoutMs: 2000 });
    expect(r).toMatchObject({ ok: false, code: 'LOG_PROOF_INVALID' });
  });

  it('validates the entry and the log keys before sending anything', async () => {
    const size = a.api.store.size;
    await expect(submitToLogs({ ...entryN(6), version: 2 } as never, [{ id: 'log-a', url: a.url }])).rejects.toMatchObject({ code: 'LOG_ENTRY_INVALID' });
    await expect(submitToLogs(entryN(6), [{ id: 'log-a', url: a.url, publicKey: 'bm90IGEga2V5' }])).rejects.toMatchObject({ code: 'KEY_INVALID' });
    expect(a.api.store.size).toBe(size);
  });

  it('fetchCheckpoint reports NETWORK_ERROR for a log that is down', async () => {
    await expect(fetchCheckpoint(deadUrl, { timeoutMs: 200, retries: 0 })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
  });
});
