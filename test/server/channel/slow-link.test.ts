/**
 * Keepalive on a slow link (src/protocol/keepalive.ts): ws sends a message as one frame, so a
 * ping or pong queued behind a 900 KB logs page arrives only once that page has crossed the link.
 * Counting only pongs, either end cut a healthy host on a slow uplink in the middle of one big
 * logs answer (`ct logs` got HOST_UNAVAILABLE and the host flapped). Here the relay carries the
 * host->server direction at 200 KB/s (~4.5 s for the page) while the end under test pings every
 * 500 ms: before the fix it ended the channel after ~1.5 s.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { channelServer, slowUplink, until, type ChannelServer } from './support.js';

const PAGE = 900_000;
const RATE = 200_000;

describe('a host on a slow uplink answering one big logs request', () => {
  describe('the server (pinging every 500 ms)', () => {
    let server: ChannelServer;
    beforeAll(async () => {
      server = await channelServer({ hostChannel: { pingMs: 500 } });
    }, 60_000);
    afterAll(() => server.close());

    it('keeps the host connected while the page is arriving', async () => {
      const proxy = await slowUplink(server.url, RATE);
      // This agent pings too seldom to matter: only the server's keepalive is tested.
      const agent = await server.agent(proxy.url, { pingMs: 600_000, logs: async () => 'x'.repeat(PAGE) });
      const events: string[] = [];
      const onEvent = (e: { type: string }) => void events.push(e.type);
      server.ctx.events.on('event', onEvent);
      try {
        await until('the host connected', () => server.hub.connected(server.hostId) !== undefined);
        const res = await server.hub.requestLogs(server.hostId, 'c1', 1 << 20, 20_000);
        // Before: HOST_UNAVAILABLE, the host marked disconnected ~1.5 s into the page.
        expect('text' in res && res.text.length).toBe(PAGE);
        expect(events).not.toContain('host.disconnected');
        expect(proxy.accepted()).toBe(1);
      } finally {
        server.ctx.events.off('event', onEvent);
        await agent.stop();
        proxy.close();
      }
    }, 30_000);
  });

  describe('the agent (pinging every 500 ms)', () => {
    let server: ChannelServer;
    beforeAll(async () => {
      // The server pings too seldom to matter: only the agent's keepalive is tested.
      server = await channelServer({ hostChannel: { pingMs: 600_000 } });
    }, 60_000);
    afterAll(() => server.close());

    it('keeps its channel while its page is crossing the link', async () => {
      const proxy = await slowUplink(server.url, RATE);
      const logs: string[] = [];
      const agent = await server.agent(proxy.url, { pingMs: 500, logs: async () => 'x'.repeat(PAGE), log: (m) => void logs.push(m) });
      try {
        await until('the host connected', () => server.hub.connected(server.hostId) !== undefined);
        const res = await server.hub.requestLogs(server.hostId, 'c1', 1 << 20, 20_000);
        // Before: the agent's pong wait ran out, it ended the channel and connected again.
        expect('text' in res && res.text.length).toBe(PAGE);
        expect(logs).not.toContain('server answered no ping');
        expect(proxy.accepted()).toBe(1);
      } finally {
        await agent.stop();
        proxy.close();
      }
    }, 30_000);
  });
});
