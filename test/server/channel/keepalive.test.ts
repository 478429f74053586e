/**
 * Liveness after authentication (src/protocol/keepalive.ts): a network that drops without a FIN
 * (here a TCP relay that stops forwarding and keeps both sockets open) left the host "connected"
 * on the server for good, and the agent waiting for a dead server for good. Each end now pings the
 * other and ends the channel after two unanswered pings.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { channelServer, tcpProxy, until, type ChannelServer } from './support.js';
import { CtError } from '../../../src/core/errors.js';
import { pingIntervalMs } from '../../../src/cli/commands/host.js';
import { buildProgram } from '../../../src/cli/program.js';

describe('a host channel whose network drops silently', () => {
  describe('the server', () => {
    let server: ChannelServer;
    beforeAll(async () => {
      server = await channelServer({ hostChannel: { pingMs: 200 } });
    }, 60_000);
    afterAll(() => server.close());

    it('marks the host disconnected once it answers no ping', async () => {
      const proxy = await tcpProxy(server.url);
      // This agent pings too seldom to notice anything itself: only the server's pings are tested.
      const agent = await server.agent(proxy.url, { pingMs: 600_000 });
      const events: { type: string; data: { hostId?: string } }[] = [];
      const onEvent = (e: { type: string; data: { hostId?: string } }) => void events.push(e);
      server.ctx.events.on('event', onEvent);
      try {
        await until('the host connected', () => server.hub.connected(server.hostId) !== undefined);
        // Answered pings keep it connected across several intervals.
        await new Promise((r) => setTimeout(r, 1_000));
        expect(server.hub.connected(server.hostId)).toBeDefined();
        proxy.freeze();
        const start = Date.now();
        // Before: connected for as long as anyone waited.
        await until('the server dropped the silent host', () => server.hub.connected(server.hostId) === undefined, 5_000);
        // Two unanswered pings: between two and three intervals.
        expect(Date.now() - start).toBeLessThan(2_000);
        expect(events).toContainEqual({ type: 'host.disconnected', data: { hostId: server.hostId } });
        // Other replicas no longer take it as this one's.
        await until('the host row released', async () => (await server.ctx.db.query<{ replica: string | null }>('SELECT replica FROM hosts WHERE id = ?', [server.hostId]))[0]?.replica === null, 5_000);
        // The agent, whose pings are far apart, still believes it is connected: it was the server's doing.
        expect(agent.connected()).toBe(true);
      } finally {
        server.ctx.events.off('event', onEvent);
        await agent.stop();
        proxy.close();
      }
    }, 30_000);
  });

  describe('the agent', () => {
    let server: ChannelServer;
    beforeAll(async () => {
      // The server pings too seldom to notice anything itself: only the agent's pings are tested.
      server = await channelServer({ hostChannel: { pingMs: 600_000 } });
    }, 60_000);
    afterAll(() => server.close());

    it('connects again once the server answers no ping', async () => {
      const proxy = await tcpProxy(server.url);
      const logs: string[] = [];
      const agent = await server.agent(proxy.url, { pingMs: 200, maxBackoffMs: 300, log: (m) => void logs.push(m) });
      try {
        await until('the host connected', () => agent.connected());
        await new Promise((r) => setTimeout(r, 1_000));
        // Answered pings: still the first connection.
        expect(proxy.accepted()).toBe(1);
        proxy.freeze();
        const start = Date.now();
        // Before: the agent kept waiting on the frozen connection for good, never opening another.
        await until('the agent connected again', () => proxy.accepted() >= 2 && agent.connected(), 5_000);
        expect(Date.now() - start).toBeLessThan(3_000);
        expect(logs).toContain('server answered no ping');
        // The server has the new channel (its welcome came through the second connection).
        await until('the server has the host', () => server.hub.connected(server.hostId) !== undefined);
      } finally {
        await agent.stop();
        proxy.close();
      }
    }, 30_000);
  });

  it('the agent\'s interval is set with ct host run --ping-interval, in whole seconds from 5 to 600 (default 30)', async () => {
    expect(pingIntervalMs('30')).toBe(30_000);
    expect(pingIntervalMs('5')).toBe(5_000);
    expect(pingIntervalMs('600')).toBe(600_000);
    for (const bad of ['4', '601', '1.5', '', '-10', '1e3', '30s', ' 30', '0']) {
      expect(() => pingIntervalMs(bad)).toThrow(CtError);
    }
    const program = await buildProgram(['node', 'ct']);
    const run = program.commands.find((c) => c.name() === 'host')?.commands.find((c) => c.name() === 'run');
    expect(run?.options.find((o) => o.long === '--ping-interval')?.defaultValue).toBe('30');
  });
});
