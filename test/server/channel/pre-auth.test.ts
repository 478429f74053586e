/**
 * Connections to the host channel that have not authenticated (config `hostChannel`;
 * server/channel/pending-handshakes.ts), attacked with raw sockets that do what a WebSocket
 * client would not: never answer the challenge, never answer a close, send half a huge frame.
 * They are destroyed at their deadline, bounded per address and in all (a new one is refused, or
 * drops an older one past the minimum age), and cannot keep the real host from connecting, nor
 * replace its channel.
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
  /** Every held connection ended, and the server's count of them back to 0. */
  const clear = async () => {
    for (const r of sockets) r.socket.destroy();
    await until('none pending', () => sockets.every((r) => r.closed()), 5_000);
  };
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

    it('keeps at most maxPendingPerAddress from one address and maxPending in all: over a limit the new one is refused while the others are young, then the oldest of the address holding the most is dropped', async () => {
      // Held open for the real host's id, one after the other (so that "oldest" is well defined).
      const one: Raw[] = [];
      for (let i = 0; i < 10; i++) one.push(await track(raw(server.url, server.hostId)));
      await until('newer ones refused', () => open(one) === 3, 5_000);
      // Every handshake younger than the minimum age (2 s here) keeps its place: the newest went.
      expect(one.slice(0, 3).every((r) => !r.closed())).toBe(true);
      // Two more addresses: the second fills the six places in all, the third finds none.
      const two: Raw[] = [];
      const three: Raw[] = [];
      for (let i = 0; i < 4; i++) two.push(await track(raw(server.url, server.hostId, '127.0.0.2')));
      for (let i = 0; i < 4; i++) three.push(await track(raw(server.url, server.hostId, '127.0.0.3')));
      await until('six in all', () => open([...one, ...two, ...three]) === 6, 5_000);
      expect(open(two)).toBe(3);
      expect(open(three)).toBe(0);
      // Older than the minimum age, the oldest of the address holding the most (the first of two
      // holding three) makes room: for an address holding none.
      await new Promise((r) => setTimeout(r, 2_100));
      const late = await track(raw(server.url, server.hostId, '127.0.0.3'));
      expect(late.got()).toMatch(/^HTTP\/1\.1 101 /);
      await until('the oldest dropped', () => one[0].closed(), 5_000);
      expect(open([...one, ...two, late])).toBe(6);
      await clear();
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

    it('ends one naming an unknown host at once, with its 4401 close frame, instead of holding its place until the deadline', async () => {
      await clear();
      const start = Date.now();
      const unknown = await track(raw(server.url, '00000000-0000-4000-8000-00000000dead', '127.0.0.8'));
      // Before: held until the deadline (a minute here), waiting for the answer to its close.
      await until('destroyed', () => unknown.closed(), 3_000);
      expect(unknown.closedAt()! - start).toBeLessThan(2_000);
      // The close frame (0x88, code 4401 = 0x1131) went out before the socket was ended.
      expect(unknown.got()).toContain('\x88');
      expect(unknown.got()).toContain('\x11\x31unknown host');
      expect((server.hub as unknown as { pending: { size: number } }).pending.size).toBe(0);
    });

    it('destroys one that sends more than a hello can be before authenticating (ws would buffer up to 1 MiB of it)', async () => {
      await clear();
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
