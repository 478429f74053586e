/**
 * A stopping server (`ct serve` on SIGTERM: server/start.ts close) ends its host channels and the
 * connections still in their handshake before it waits for its connections to end: upgraded
 * sockets are not HTTP connections `closeAllConnections()` ends, and it used to wait for every
 * connected host to hang up, which none does (its deploy queue and database kept open meanwhile).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testServer } from '../support.js';
import { deployPipeline } from '../../../server/deploy/wire.js';
import { createApiKey } from '../../../server/auth/api-keys.js';
import { startAgent, type Agent } from '../../../host/agent/agent.js';
import { CHANNEL_PROTOCOL } from '../../../src/protocol/handshake.js';
import { FACTS, until } from './support.js';

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
});
