/**
 * Finding 10 of issue 13: the channel handshake is bound to its whole transcript. A real agent
 * talks to the real hub through a man-in-the-middle relay on 127.0.0.1 that rewrites, swaps,
 * replays or reorders handshake frames; every change is refused with CHANNEL_HANDSHAKE_FAILED
 * (close code 4401) and the host is not connected, while the untouched relay connects.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { WebSocket } from 'ws';
import { CHANNEL_PROTOCOL } from '../../../src/protocol/handshake.js';
import type { Agent } from '../../../host/agent/agent.js';
import { Relay, channelServer, frameText, until, type ChannelServer, type RelayedConnection } from './support.js';

describe('host channel handshake through a man in the middle', () => {
  let server: ChannelServer;
  let relay: Relay;
  let relayUrl: string;
  let agent: Agent | undefined;

  beforeAll(async () => {
    server = await channelServer();
  }, 60_000);
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await relay?.close();
    await until('host gone', () => !server.hub.connected(server.hostId));
  });
  const startRelay = async () => {
    relay = new Relay(server.url);
    relayUrl = await relay.listen();
  };

  /** What the server did after the hello: closed (with which code), or answered (accepted it). */
  const outcome = (c: RelayedConnection) =>
    Promise.race([
      c.serverClose.then((x) => ({ closed: x.code, reason: x.reason })),
      until('a server frame after the challenge', () => c.down.length > 1).then(() => ({ accepted: true })),
    ]);

  it('connects through an honest relay (the control)', async () => {
    await startRelay();
    agent = await server.agent(relayUrl);
    await until('connected through the relay', () => agent!.connected());
    expect(server.hub.connected(server.hostId)).toMatchObject({ kernel: '6.1.0-test' });
    expect(relay.connections[0].up[0]).toMatch(/^[A-Za-z0-9_-]{86}\.\{"type":"hello"/);
  });

  // Rewrites that keep every parsed field the v1 signature covered, or change one (a signed null
  // turned into Infinity): the v1 hub accepted each of them.
  it.each([
    ['a facts value (null → 1e999)', '"bpftraceVersion":null', '"bpftraceVersion":1e999'],
    ['the generation, spelled otherwise', '"generation":0', '"generation":0.0'],
    ['the kernel, escaped', '"kernel":"6.1.0-test"', '"kernel":"\\u0036.1.0-test"'],
    ['whitespace after a field', '"type":"hello"', '"type":"hello" '],
  ])('refuses a hello with %s rewritten', async (_what, from, to) => {
    await startRelay();
    relay.toServer = (t, i) => {
      if (i !== 0) return t;
      expect(t).toContain(from);
      return t.replace(from, to);
    };
    agent = await server.agent(relayUrl);
    await until('a hello relayed', () => relay.connections.length > 0 && relay.connections[0].up.length > 0);
    expect(await outcome(relay.connections[0])).toEqual({ closed: 4401, reason: 'CHANNEL_HANDSHAKE_FAILED' });
    expect(server.hub.connected(server.hostId)).toBeUndefined();
    expect(agent.connected()).toBe(false);
  });

  it('refuses a challenge taken from another session of the same host', async () => {
    await startRelay();
    // The relay opens a second connection of its own and hands its challenge to the agent.
    const other = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/hosts/channel?host=${server.hostId}`, [CHANNEL_PROTOCOL]);
    const otherChallenge = await new Promise<string>((r) => other.once('message', (d) => r(frameText(d))));
    relay.toHost = (t, i) => (i === 0 ? otherChallenge : t);
    agent = await server.agent(relayUrl);
    await until('a hello relayed', () => relay.connections.length > 0 && relay.connections[0].up.length > 0);
    expect(await outcome(relay.connections[0])).toEqual({ closed: 4401, reason: 'CHANNEL_HANDSHAKE_FAILED' });
    // That hello does answer the relay's own session (it relayed the real host's handshake), but the
    // relay holds no session key: its first own frame is refused and the session ends.
    const welcome = new Promise((r) => other.once('message', r));
    other.send(relay.connections[0].up[0]);
    await welcome;
    const closed = new Promise<[number, string]>((r) => other.once('close', (code, reason) => r([code, reason.toString()])));
    other.send(`${'A'.repeat(43)}.{"seq":1,"msg":{"type":"containers","containers":[]}}`);
    expect(await closed).toEqual([4401, 'INVALID_SIGNATURE']);
  });

  it('refuses a hello replayed into another connection, and the connected host stays', async () => {
    await startRelay();
    agent = await server.agent(relayUrl);
    await until('connected', () => agent!.connected());
    const hello = relay.connections[0].up[0];
    const again = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/hosts/channel?host=${server.hostId}`, [CHANNEL_PROTOCOL]);
    await new Promise((r) => again.once('message', r));
    const closed = new Promise<[number, string]>((r) => again.once('close', (code, reason) => r([code, reason.toString()])));
    again.send(hello);
    expect(await closed).toEqual([4401, 'CHANNEL_HANDSHAKE_FAILED']);
    expect(server.hub.connected(server.hostId)).toBeDefined();
    expect(agent.connected()).toBe(true);
  });

  it('refuses reordered frames: a MAC frame before the hello, and swapped frames after it', async () => {
    await startRelay();
    // First connection: the hello held back, a later frame sent in its place.
    let held: string | undefined;
    relay.toServer = (t, i, c) => {
      if (c !== relay.connections[0]) return t;
      if (i === 0) {
        held = t;
        return `${'A'.repeat(43)}.{"seq":1,"msg":{"type":"containers","containers":[]}}`;
      }
      return t;
    };
    agent = await server.agent(relayUrl);
    await until('a frame relayed', () => relay.connections.length > 0 && relay.connections[0].up.length > 0);
    expect(held).toBeDefined();
    expect(await outcome(relay.connections[0])).toEqual({ closed: 4401, reason: 'CHANNEL_HANDSHAKE_FAILED' });
    // The agent reconnects; this time its first two MAC frames arrive swapped.
    let first: string | undefined;
    relay.toServer = (t, i, c) => {
      if (c === relay.connections[0] || i === 0) return t;
      if (i === 1) {
        first = t; // seq 1 (the inventory) held back
        return null;
      }
      return i === 2 ? [t, first!] : t; // seq 2 (the status) first
    };
    await until('a second connection', () => relay.connections.length > 1);
    const second = relay.connections[1];
    await until('welcome relayed', () => second.down.length > 1);
    agent.report({ type: 'status', deploymentId: 'd', generation: 1, state: 'running' });
    expect((await second.serverClose)).toEqual({ code: 4401, reason: 'INVALID_SIGNATURE' });
  });

  it('tells a peer without the channel version so (CHANNEL_VERSION_UNSUPPORTED, 4426)', async () => {
    const old = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/hosts/channel?host=${server.hostId}`);
    const [code, reason] = await new Promise<[number, string]>((r) => old.once('close', (c, why) => r([c, why.toString()])));
    expect([code, reason]).toEqual([4426, 'CHANNEL_VERSION_UNSUPPORTED']);
  });
});
