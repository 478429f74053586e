/**
 * `/api/v1/events` holds a socket, two timers and a listener per stream: streams are capped per
 * principal (`events.perPrincipal`, default 8) and in all (`events.maxStreams`, default 256); past
 * either the answer is 429 EVENT_STREAM_LIMIT with Retry-After, and a closed stream frees its place.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { connect } from 'node:net';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import type { RunningServer } from '../../server/start.js';
import { openEventStream, type EventStream } from '../support/event-stream.js';
import { EVENT_STREAMS_PER_PRINCIPAL } from '../../server/routes/events.js';

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('/api/v1/events: open streams are capped', () => {
  const streams: EventStream[] = [];
  const servers: RunningServer[] = [];
  afterAll(async () => {
    for (const s of streams) s.abort();
    for (const s of servers) await s.close();
  });
  const start = async (events?: { perPrincipal?: number; maxStreams?: number }) => {
    const server = await testServer(events ? { events } : {});
    servers.push(server);
    return server;
  };
  const key = async (server: RunningServer, name: string) => (await createApiKey(server.ctx.db, name, 'viewer')).key;
  const open = async (server: RunningServer, k: string) => {
    const s = await openEventStream(`${server.url}/api/v1/events`, { authorization: `Bearer ${k}` });
    streams.push(s);
    return s;
  };
  const refused = async (server: RunningServer, k: string) => {
    const res = await fetch(`${server.url}/api/v1/events`, { headers: { authorization: `Bearer ${k}` } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    return ((await res.json()) as { error: { code: string } }).error.code;
  };

  it('refuses a principal past perPrincipal, and everyone past maxStreams; a closed stream frees its place', async () => {
    const server = await start({ perPrincipal: 3, maxStreams: 5 });
    const [a, b, c] = [await key(server, 'a'), await key(server, 'b'), await key(server, 'c')];
    const mine = [await open(server, a), await open(server, a), await open(server, a)];
    expect(await refused(server, a)).toBe('EVENT_STREAM_LIMIT');
    await open(server, b);
    await open(server, b);
    // Five open in all: a third principal is refused too, though it holds none.
    expect(await refused(server, c)).toBe('EVENT_STREAM_LIMIT');
    expect(server.ctx.events.listenerCount('event')).toBe(5);
    mine[0].abort();
    await until('the closed stream to be let go', () => server.ctx.events.listenerCount('event') === 4);
    const again = await open(server, c);
    expect(await again.ended(200)).toBe('open');
    expect(await refused(server, a)).toBe('EVENT_STREAM_LIMIT');
  });

  it('caps one principal at 8 by default', async () => {
    const server = await start();
    const k = await key(server, 'many');
    for (let i = 0; i < EVENT_STREAMS_PER_PRINCIPAL; i++) await open(server, k);
    expect(EVENT_STREAMS_PER_PRINCIPAL).toBe(8);
    expect(await refused(server, k)).toBe('EVENT_STREAM_LIMIT');
    // Another principal still gets one.
    await open(server, await key(server, 'other'));
    expect(server.ctx.events.listenerCount('event')).toBe(EVENT_STREAMS_PER_PRINCIPAL + 1);
  });

  it('lets go of the place of a client that went away while its credentials were checked', async () => {
    const server = await start({ perPrincipal: 8, maxStreams: 3 });
    const keys = [await key(server, 'a'), await key(server, 'b'), await key(server, 'c'), await key(server, 'd')];
    const baseline = server.ctx.events.listenerCount('event');
    // A database over the network: each query takes 100 ms, so the clients below leave mid-check.
    const db = server.ctx.db as unknown as { query: (...a: unknown[]) => Promise<unknown> };
    const query = db.query.bind(db);
    db.query = async (...a: unknown[]) => {
      await new Promise((r) => setTimeout(r, 100));
      return query(...a);
    };
    try {
      await Promise.all(keys.slice(0, 3).map((k) => new Promise<void>((resolve, reject) => {
        const s = connect(Number(new URL(server.url).port), '127.0.0.1', () => {
          s.write(`GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${k}\r\n\r\n`);
          setTimeout(() => (s.destroy(), resolve()), 20);
        });
        s.on('error', reject);
      })));
      // Every check answered (each takes a few queries) after its client left.
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      db.query = query;
    }
    expect(server.ctx.events.listenerCount('event')).toBe(baseline);
    const fresh = await open(server, keys[3]);
    expect(await fresh.ended(200)).toBe('open');
    expect(server.ctx.events.listenerCount('event')).toBe(baseline + 1);
  });

  it('keeps the last tenth of maxStreams for admins and auditors', async () => {
    const server = await start({ perPrincipal: 8, maxStreams: 10 });
    for (const n of ['v1', 'v2']) {
      const k = await key(server, n);
      for (let i = 0; i < (n === 'v1' ? 8 : 1); i++) await open(server, k);
    }
    // Nine open: a viewer is refused, an admin still gets the tenth, then nobody.
    expect(await refused(server, await key(server, 'v3'))).toBe('EVENT_STREAM_LIMIT');
    const admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    expect(await (await open(server, admin)).ended(200)).toBe('open');
    expect(await refused(server, (await createApiKey(server.ctx.db, 'auditor', 'auditor')).key)).toBe('EVENT_STREAM_LIMIT');
  });
});
