/**
 * A stopping server (`ct serve` on SIGTERM: server/start.ts close) ends its host channels and the
 * connections still in their handshake before it waits for its connections to end: upgraded
 * sockets are not HTTP connections `closeAllConnections()` ends, and it used to wait for every
 * connected host to hang up, which none does (its deploy queue and database kept open meanwhile).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as tcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testServer } from '../support.js';
import { deployPipeline } from '../../../server/deploy/wire.js';
import { createApiKey } from '../../../server/auth/api-keys.js';
import { startAgent, type Agent } from '../../../host/agent/agent.js';
import { CHANNEL_PROTOCOL } from '../../../src/protocol/handshake.js';
import { channelServer, FACTS, until } from './support.js';

describe('a server that stops with hosts connected', () => {
  const dirs: string[] = [];
  let agent: Agent | undefined;
  afterAll(async () => {
    await agent?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('ends their channels and pending handshakes instead of waiting for them', async () => {
    const server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    const admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    const res = await fetch(`${server.url}/api/v1/hosts/tokens`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"labels":{}}' });
    const { token } = (await res.json()) as { token: string };
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-shutdown-host-'));
    dirs.push(stateDir);
    const a = await startAgent({
      serverUrl: server.url, stateDir, name: 'shutdown-host', enrollToken: token, facts: async () => FACTS, maxBackoffMs: 200,
      runner: { run: async () => ({ state: 'refused', code: 'USAGE', message: 'not in this test' }) },
    });
    agent = a;
    await until('connected', () => a.connected());
    // And a connection held in its handshake (its deadline is the default 10 s).
    const held = connect({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    held.on('error', () => undefined);
    held.write([`GET /api/v1/hosts/channel?host=${a.hostId} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Protocol: ${CHANNEL_PROTOCOL}`, '', ''].join('\r\n'));
    await new Promise((r) => held.once('data', r));
    const start = Date.now();
    const outcome = await Promise.race([server.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('still waiting'), 8_000))]);
    held.destroy();
    expect(outcome).toBe('closed');
    expect(Date.now() - start).toBeLessThan(5_000);
    // The host saw its channel end (and tries again, to a server that is gone).
    await until('host disconnected', () => !a.connected(), 5_000);
  });

  it('lets a deploy in flight get its host\'s answer before it ends the channels', async () => {
    const server = await channelServer();
    const digest = `sha256:${'a'.repeat(64)}`;
    const stateDir = server.stateDir();
    // The bundle already held by the host: no download in this test.
    mkdirSync(join(stateDir, 'bundles'), { recursive: true });
    writeFileSync(join(stateDir, 'bundles', `${'a'.repeat(64)}.ctp`), 'x');
    let ran = 0;
    const host = await server.agent(server.url, {
      stateDir,
      runner: { run: async () => { ran = Date.now(); await new Promise((r) => setTimeout(r, 2_000)); return { state: 'running' as const }; } },
    } as never);
    await until('connected', () => host.connected());
    let result: { type: string; state?: string } | undefined;
    server.ctx.queue.on('test-assign', async () => {
      result = await server.hub.assign(server.hostId, { deploymentId: 'dep-1', environment: 'prod', app: 'web', bundle: `r/x@${digest}`, bundleDigest: digest, imageDigest: digest, download: `/api/v1/hosts/bundles/${digest}` }, 8_000);
      return { state: 'done', result };
    });
    await server.ctx.queue.enqueue('test-assign', 'k1', {});
    await until('the host runs it', () => ran > 0);
    const start = Date.now();
    await server.stopServer();
    const took = Date.now() - start;
    await server.close();
    // Before: the channel ended first; the deploy waited its whole host timeout (8 s here) for nothing.
    expect(result).toMatchObject({ type: 'status', state: 'running' });
    expect(took).toBeGreaterThanOrEqual(1_000);
    expect(took).toBeLessThan(6_000);
  }, 30_000);

  it('does not wait for a host that has gone silent to answer its close', async () => {
    const server = await channelServer();
    // A relay that stops carrying anything either way (a network partition), and closes nothing.
    let frozen = false;
    const socks: Socket[] = [];
    const relay = tcpServer((c) => {
      const u = connect({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
      socks.push(c, u);
      c.on('data', (d) => !frozen && u.write(d));
      u.on('data', (d) => !frozen && c.write(d));
      c.on('error', () => undefined);
      u.on('error', () => undefined);
      c.on('close', () => !frozen && u.destroy());
      u.on('close', () => !frozen && c.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const host = await server.agent(`http://127.0.0.1:${(relay.address() as { port: number }).port}`);
      await until('connected', () => host.connected());
      frozen = true;
      const start = Date.now();
      const outcome = await Promise.race([server.stopServer().then(() => 'closed'), new Promise((r) => setTimeout(() => r('still waiting'), 10_000))]);
      // Before: the channel's close waited 30 s for the host's answer.
      expect(outcome).toBe('closed');
      expect(Date.now() - start).toBeLessThan(5_000);
    } finally {
      for (const s of socks) s.destroy();
      relay.close();
      await server.close();
    }
  }, 30_000);
});
