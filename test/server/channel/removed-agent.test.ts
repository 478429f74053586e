/**
 * An agent whose host was removed stops for good, on the server's signed refusal (src/protocol/
 * refusal.ts), instead of retrying for ever; nothing else stops it: an unsigned 4403 close, a
 * refusal signed by another key, replayed from another connection or naming another host, an
 * HTTP 503 or a reset upgrade, all leave it connecting until it gets in. An unknown id (the row
 * gone without a removal: a server on the wrong database) is believed only once it lasted.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import type { Agent } from '../../../host/agent/agent.js';
import { loadServerKey } from '../../../server/channel/server-key.js';
import { refusalFrame, refusalNonce } from '../../../src/protocol/refusal.js';
import { CtError } from '../../../src/core/errors.js';
import { channelServer, Relay, tcpProxy, until, type ChannelServer, type ProxyAnswer, type TcpProxy } from './support.js';

const settled = (agent: Agent) => {
  let got: CtError | undefined;
  void agent.ended.then((e) => (got = e));
  return () => got;
};
// Unref'd: a race's losing timer must not hold the worker open.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

describe('an agent whose host was removed', () => {
  let s: ChannelServer;
  const closers: (() => unknown)[] = [];
  beforeEach(async () => {
    s = await channelServer();
  }, 30_000);
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    await s.close();
  });
  const del = (ref: string) => fetch(`${s.url}/api/v1/hosts/${encodeURIComponent(ref)}`, { method: 'DELETE', headers: { authorization: `Bearer ${s.adminKey}` } });

  it('stops for good with HOST_REMOVED and opens no further connection', async () => {
    const proxy: TcpProxy = await tcpProxy(s.url);
    closers.push(() => proxy.close());
    const agent = await s.agent(proxy.url);
    await until('connected', () => agent.connected());
    expect((await del(s.hostId)).status).toBe(204);
    // Its live channel is closed (4403, unsigned: not believed), it connects again, and is told, signed.
    const e = await Promise.race([agent.ended, sleep(10_000).then(() => undefined)]);
    expect(e).toBeInstanceOf(CtError);
    expect(e).toMatchObject({ code: 'HOST_REMOVED', details: { hostId: s.hostId } });
    const attempts = proxy.accepted();
    expect(attempts).toBeGreaterThanOrEqual(2);
    // Its backoff is capped at 300 ms here: before, this was several more attempts.
    await sleep(1_500);
    expect(proxy.accepted()).toBe(attempts);
    expect(agent.connected()).toBe(false);
  }, 30_000);

  it('keeps connecting through an unsigned 4403, forged, replayed or misdirected refusals, a 503 and resets, and gets in', async () => {
    const relay = new Relay(s.url);
    const relayUrl = await relay.listen();
    closers.push(() => relay.close());
    const serverKey = (await loadServerKey(s.ctx.config.dataDir)).privateKey;
    const otherKey = generateKeyPairSync('ed25519').privateKey;
    // What a path that is not the server sends instead of the challenge, one per connection.
    const forgeries: ((nonce: string) => string | 'close')[] = [
      () => 'close', // a bare 4403 HOST_REMOVED, as a proxy or an attacker can send
      (nonce) => refusalFrame(otherKey, s.hostId, nonce, 'HOST_REMOVED').toString(), // not the server's key
      () => refusalFrame(serverKey, s.hostId, refusalNonce(), 'HOST_REMOVED').toString(), // the server's, from another connection
      (nonce) => refusalFrame(serverKey, '00000000-0000-4000-8000-0000000000ff', nonce, 'HOST_REMOVED').toString(), // the server's, for another host
    ];
    let forged = 0;
    relay.toHost = (text, index, c) => {
      if (index !== 0 || forged >= forgeries.length) return text;
      const out = forgeries[forged++](c.nonce!);
      if (out !== 'close') return out;
      c.client.close(4403, 'HOST_REMOVED');
      return null;
    };
    // In front of the relay: a busy server's 503 and two resets come first.
    const plan: ProxyAnswer[] = ['http503', 'reset', 'http503'];
    const front = await tcpProxy(relayUrl, 0, () => plan.shift() ?? 'pass');
    closers.push(() => front.close());
    const agent = await s.agent(front.url);
    const ended = settled(agent);
    await until('connected after the refusals', () => agent.connected(), 20_000);
    expect(forged).toBe(forgeries.length);
    expect(plan).toEqual([]);
    expect(front.accepted()).toBeGreaterThanOrEqual(3 + forgeries.length + 1);
    expect(s.hub.connected(s.hostId)).toBeDefined();
    expect(ended()).toBeUndefined();
  }, 30_000);

  it('believes a signed HOST_UNKNOWN only once it lasted: a row back in time lets it in', async () => {
    const proxy = await tcpProxy(s.url);
    closers.push(() => proxy.close());
    const agent = await s.agent(proxy.url, { unknownGraceMs: 2_000 });
    const ended = settled(agent);
    await until('connected', () => agent.connected());
    // The row goes without a removal (a server started on another database), then comes back.
    const [row] = await s.ctx.db.query<Record<string, unknown>>('SELECT * FROM hosts WHERE id = ?', [s.hostId]);
    await s.ctx.db.run('DELETE FROM hosts WHERE id = ?', [s.hostId]);
    proxy.cut();
    const before = proxy.accepted();
    await until('refused a few times', () => proxy.accepted() >= before + 3, 10_000);
    expect(agent.connected()).toBe(false);
    const cols = Object.keys(row);
    await s.ctx.db.run(`INSERT INTO hosts (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, cols.map((c) => row[c]));
    await until('connected again', () => agent.connected(), 10_000);
    expect(ended()).toBeUndefined();

    // Gone again, for longer than its grace (counted afresh after the welcome): it stops.
    await s.ctx.db.run('DELETE FROM hosts WHERE id = ?', [s.hostId]);
    proxy.cut();
    const started = Date.now();
    const e = await Promise.race([agent.ended, sleep(15_000).then(() => undefined)]);
    expect(e).toMatchObject({ code: 'HOST_UNKNOWN' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    const attempts = proxy.accepted();
    await sleep(1_000);
    expect(proxy.accepted()).toBe(attempts);
  }, 45_000);

  it('does not stop on a HOST_UNKNOWN that is not on every connection: one reset between starts the grace again', async () => {
    // Every other connection is reset before the server sees it, so no two HOST_UNKNOWN come in a row.
    let n = 0;
    const proxy = await tcpProxy(s.url, 0, () => (n++ % 2 === 0 ? 'pass' : 'reset'));
    closers.push(() => proxy.close());
    await s.ctx.db.run('DELETE FROM hosts WHERE id = ?', [s.hostId]);
    const agent = await s.agent(proxy.url, { unknownGraceMs: 500 });
    const ended = settled(agent);
    // Well past the grace and its 3 answers (the backoff is capped at 300 ms): before, it stopped.
    await until('many answers', () => proxy.accepted() >= 16 || ended() !== undefined, 20_000);
    expect(ended()).toBeUndefined();
    await agent.stop();
    // The same server answering every connection: it stops, so the one above was not just slow.
    const other = await s.agent(s.url, { unknownGraceMs: 500 });
    expect(await Promise.race([other.ended, sleep(10_000).then(() => undefined)])).toMatchObject({ code: 'HOST_UNKNOWN' });
  }, 45_000);
});
