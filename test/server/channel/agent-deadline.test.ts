/**
 * The agent's side of the handshake deadline (host/agent/agent.ts, `handshakeMs`): a server, or
 * anything on the path, that accepts the connection and then says nothing (no upgrade answer, no
 * challenge) used to leave the host without a channel for good. It now gives up and connects
 * again, and gets in once a real server answers.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { startAgent, type Agent } from '../../../host/agent/agent.js';
import { CHANNEL_PROTOCOL } from '../../../src/protocol/handshake.js';
import { handshakeTimeoutMs } from '../../../src/cli/commands/host.js';
import { CtError } from '../../../src/core/errors.js';
import { FACTS, handServer, until } from './support.js';

describe('an agent whose server says nothing', () => {
  const dirs: string[] = [];
  const agents: Agent[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const c of closers) await c();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const agentFor = async (serverUrl: string, stateDir: string) => {
    const a = await startAgent({
      serverUrl, stateDir, name: 'silent-host', facts: async () => FACTS, maxBackoffMs: 100, handshakeMs: 300,
      runner: { run: async () => ({ state: 'refused', code: 'USAGE', message: 'not in this test' }) },
    });
    agents.push(a);
    return a;
  };
  /** A host enrolled with a server by hand (its identity only: this test points it elsewhere). */
  const enrolled = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-agent-deadline-'));
    dirs.push(dir);
    const real = await handServer(dir);
    closers.push(() => real.close());
    return { dir, real };
  };

  it('connects again when the upgrade is never answered', async () => {
    const { dir } = await enrolled();
    const sockets: Socket[] = [];
    let closed = 0;
    const silent: Server = createServer((s) => {
      sockets.push(s);
      // Read (and ignored), so that the agent's end of it is seen.
      s.resume();
      s.on('close', () => void closed++);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    await agentFor(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, dir);
    // Before: one connection, held for good.
    await until('three attempts', () => sockets.length >= 3, 10_000);
    await until('the earlier ones given up', () => closed >= 2, 5_000);
  });

  it('connects again when the challenge never comes', async () => {
    const { dir, real } = await enrolled();
    let upgrades = 0;
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(CHANNEL_PROTOCOL) ? CHANNEL_PROTOCOL : false) });
    // Upgraded, and then nothing.
    wss.on('connection', () => void upgrades++);
    await new Promise((r) => wss.once('listening', r));
    closers.push(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    });
    const agent = await agentFor(`http://127.0.0.1:${(wss.address() as AddressInfo).port}`, dir);
    await until('three attempts', () => upgrades >= 3, 10_000);
    expect(agent.connected()).toBe(false);
    expect(real.welcomed()).toBe(0);
  });

  it('keeps an authenticated channel past the deadline', async () => {
    const { dir, real } = await enrolled();
    const agent = await agentFor(real.url, dir);
    await until('welcomed', () => agent.connected(), 10_000);
    await new Promise((r) => setTimeout(r, 800));
    expect(agent.connected()).toBe(true);
    expect(real.welcomed()).toBe(1);
  });

  it('is set with ct host run --handshake-timeout, in whole seconds from 5 to 600', () => {
    expect(handshakeTimeoutMs('30')).toBe(30_000);
    expect(handshakeTimeoutMs('5')).toBe(5_000);
    expect(handshakeTimeoutMs('600')).toBe(600_000);
    for (const bad of ['4', '601', '1.5', '', '-10', '1e3', '30s', ' 30']) {
      expect(() => handshakeTimeoutMs(bad)).toThrow(CtError);
    }
  });
});
