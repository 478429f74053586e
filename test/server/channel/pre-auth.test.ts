/**
 * Connections to the host channel that have not authenticated (config `hostChannel`;
 * server/channel/pending-handshakes.ts), attacked with raw sockets that do what a WebSocket
 * client would not: never answer the challenge, never answer a close, send half a huge frame.
 * They are destroyed at their deadline, bounded per address and in all (a new one drops the
 * oldest), and cannot keep the real host from connecting, nor replace its channel.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type Socket } from 'node:net';
import { addressKey, MAX_PRE_AUTH_BYTES } from '../../../server/channel/pending-handshakes.js';
import { CHANNEL_PROTOCOL } from '../../../src/protocol/handshake.js';
import { channelServer, until, type ChannelServer } from './support.js';

interface Raw {
  socket: Socket;
  /** Everything the server sent (the 101 answer, then WebSocket frames). */
  got: () => string;
  closed: () => boolean;
  /** When it closed (ms since the epoch). */
  closedAt: () => number | undefined;
}

/** A client that upgrades by hand and then answers nothing, not even a close frame. */
async function raw(url: string, hostId: string, localAddress = '127.0.0.1'): Promise<Raw> {
  const { port } = new URL(url);
  const socket = connect({ host: '127.0.0.1', port: Number(port), localAddress });
  let got = Buffer.alloc(0);
  let closedAt: number | undefined;
  socket.on('data', (d) => (got = Buffer.concat([got, d])));
  socket.on('close', () => (closedAt = Date.now()));
  socket.on('error', () => undefined);
  socket.write([
    `GET /api/v1/hosts/channel?host=${hostId} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Protocol: ${CHANNEL_PROTOCOL}`, '', '',
  ].join('\r\n'));
  const r: Raw = { socket, got: () => got.toString('latin1'), closed: () => closedAt !== undefined, closedAt: () => closedAt };
  // Upgraded (or closed): the server has counted it by then.
  await until('upgrade answered', () => r.got().includes('\r\n\r\n') || r.closed(), 10_000);
  return r;
}

const open = (rs: Raw[]) => rs.filter((r) => !r.closed()).length;

describe('host channel connections that have not authenticated', () => {
  const sockets: Raw[] = [];
  const track = async (p: Promise<Raw>) => {
    const r = await p;
    sockets.push(r);
    return r;
  };
  describe('with a short deadline', () => {
    let server: ChannelServer;
    beforeAll(async () => {
      server = await channelServer({ hostChannel: { handshakeMs: 500 } });
    }, 60_000);
    afterAll(async () => {
      // The server's close waits for every socket it accepted, held ones too (up to their deadline).
      for (const r of sockets) r.socket.destroy();
      await server.close();
    });

    it('destroys one that never answers the challenge, or never answers the close of an unknown host, at the deadline', async () => {
      const start = Date.now();
      const silent = await track(raw(server.url, server.hostId));
      // Upgraded, and challenged: it is the handshake that it holds open.
      expect(silent.got()).toMatch(/^HTTP\/1\.1 101 /);
      await until('challenge sent', () => silent.got().includes('cerro-torre'), 5_000);
      // Enrolled nowhere: the server closes with 4401 and waits for a close frame that never comes.
      const unknown = await track(raw(server.url, '00000000-0000-4000-8000-00000000dead'));
      // Before: 10 s to the handshake's close, then ws waited 30 s for the answer to it.
      await until('both destroyed', () => silent.closed() && unknown.closed(), 5_000);
      expect(silent.closedAt()! - start).toBeLessThan(4_000);
      expect(unknown.closedAt()! - start).toBeLessThan(4_000);
    });

    it('still lets the real host in, well within the deadline', async () => {
      const agent = await server.agent(server.url);
      await until('connected', () => agent.connected(), 10_000);
      // Past the deadline the authenticated channel stays.
      await new Promise((r) => setTimeout(r, 800));
      expect(agent.connected()).toBe(true);
      expect(server.hub.connected(server.hostId)).toBeDefined();
      await agent.stop();
      await until('host gone', () => !server.hub.connected(server.hostId));
    });
  });

  describe('with small limits and a long deadline', () => {
    let server: ChannelServer;
    beforeAll(async () => {
      server = await channelServer({ hostChannel: { maxPending: 6, maxPendingPerAddress: 3, handshakeMs: 60_000 } });
    }, 60_000);
    afterAll(async () => {
      // The server's close waits for every socket it accepted, held ones too (up to their deadline).
      for (const r of sockets) r.socket.destroy();
      await server.close();
    });

    it('keeps at most maxPendingPerAddress from one address and maxPending in all, dropping the oldest', async () => {
      // Held open for the real host's id, one after the other (so that "oldest" is well defined).
      const one: Raw[] = [];
      for (let i = 0; i < 10; i++) one.push(await track(raw(server.url, server.hostId)));
      await until('oldest dropped', () => open(one) === 3, 5_000);
      // The three newest are the ones left.
      expect(one.slice(7).every((r) => !r.closed())).toBe(true);
      // Two more addresses: three each would make nine; the oldest go first, to six in all.
      const two: Raw[] = [];
      const three: Raw[] = [];
      for (let i = 0; i < 4; i++) two.push(await track(raw(server.url, server.hostId, '127.0.0.2')));
      for (let i = 0; i < 4; i++) three.push(await track(raw(server.url, server.hostId, '127.0.0.3')));
      await until('six in all', () => open([...one, ...two, ...three]) === 6, 5_000);
      expect(open(two)).toBeLessThanOrEqual(3);
      expect(open(three)).toBe(3);
      // Held a while longer: nothing else closes them (the deadline is a minute away).
      await new Promise((r) => setTimeout(r, 300));
      expect(open([...one, ...two, ...three])).toBe(6);
    });

    it('cannot keep the real host out, nor replace its channel, however many it holds for that host id', async () => {
      // The limits are full of connections held for this host's id when the host comes.
      for (let i = 0; i < 6; i++) await track(raw(server.url, server.hostId, `127.0.0.${4 + (i % 2)}`));
      const agent = await server.agent(server.url);
      await until('the real host connected', () => agent.connected(), 10_000);
      // More held for its id after it connected: its channel stays the one in use.
      const later: Raw[] = [];
      for (let i = 0; i < 8; i++) later.push(await track(raw(server.url, server.hostId, '127.0.0.6')));
      await new Promise((r) => setTimeout(r, 300));
      expect(agent.connected()).toBe(true);
      expect(server.hub.connected(server.hostId)).toBeDefined();
      expect(open(later)).toBe(3);
      await agent.stop();
      await until('host gone', () => !server.hub.connected(server.hostId));
    });

    it('destroys one that sends more than a hello can be before authenticating (ws would buffer up to 1 MiB of it)', async () => {
      const r = await track(raw(server.url, server.hostId, '127.0.0.7'));
      expect(r.got()).toMatch(/^HTTP\/1\.1 101 /);
      // A masked text frame announcing 900 KiB, and 200 KiB of it: never finished, never a message.
      const header = Buffer.alloc(14);
      header[0] = 0x81;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(900n * 1024n, 2);
      r.socket.write(Buffer.concat([header, Buffer.alloc(200 * 1024, 0x61)]));
      expect(200 * 1024).toBeGreaterThan(MAX_PRE_AUTH_BYTES);
      await until('destroyed', () => r.closed(), 5_000);
    });
  });

  it('counts IPv6 clients by their /64, IPv4 ones (mapped or not) by their address', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002::ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey(undefined)).toBe('');
  });
});
