/**
 * A status and the inventory after it in one frame (#14 target 8; docs/host-protocol.md step 4):
 * the server lists `status.containers` in its welcome, a real agent then answers an assignment
 * with ONE MAC frame carrying both, which the hub reads as the status followed by the inventory;
 * an older host's two frames are still read; a new agent talking to a server that does not list
 * the feature sends the two frames of the base protocol.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { startAgent } from '../../../host/agent/agent.js';
import type { Assignment, InventoryItem, ServerMessage } from '../../../src/protocol/messages.js';
import { FACTS, Relay, channelServer, handServer, rawHost, until, type ChannelServer } from './support.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const assignment = (deploymentId: string): Omit<Assignment, 'generation'> => ({
  deploymentId, environment: 'production', app: 'web', bundle: `registry.example/web@${DIGEST}`, bundleDigest: DIGEST, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${DIGEST}`,
});
const item = (id: string): InventoryItem => ({ id, app: 'web', imageDigest: `sha256:${'c'.repeat(64)}`, state: 'running', health: 'none', restarts: 0 });
/** A bundle already on the host: the agent does not download it and goes straight to its runner. */
const withBundle = (stateDir: string) => {
  mkdirSync(join(stateDir, 'bundles'), { recursive: true });
  writeFileSync(join(stateDir, 'bundles', `${DIGEST.slice(7)}.ctp`), 'bundle');
  return stateDir;
};
/** The message inside a MAC frame, read without checking it (the relay holds no key). */
const inner = (frame: string) => (JSON.parse(frame.slice(44)) as { msg: Record<string, unknown> }).msg;

describe('a status with its inventory in one frame', () => {
  let server: ChannelServer;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'ct-status-inv-'));
    dirs.push(d);
    return d;
  };
  const containersOf = async (hostId: string) => {
    const res = await fetch(`${server.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    const { hosts } = (await res.json()) as { hosts: { id: string; containers: unknown }[] };
    return hosts.find((h) => h.id === hostId)?.containers;
  };

  beforeAll(async () => {
    server = await channelServer();
  }, 60_000);
  afterAll(async () => {
    await server.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is what a real agent sends to this server: one frame, read as the status and then the inventory', async () => {
    const relay = new Relay(server.url);
    const url = await relay.listen();
    try {
      const agent = await server.agent(url, {
        stateDir: withBundle(server.stateDir()),
        runner: { run: async () => ({ state: 'running' }) },
        inventory: async () => [item('ct-one-frame')],
      });
      await until('connected', () => agent.connected());
      const c = relay.connections[0];
      // The hello, then the inventory every connect sends.
      await until('inventory on connect', () => c.up.length >= 2);
      expect(inner(c.up[1])).toMatchObject({ type: 'containers' });
      expect(inner(c.down[1])).toMatchObject({ type: 'welcome', features: ['status.containers'] });
      const before = c.up.length;
      const out = await server.hub.assign(server.hostId, assignment('dep-one-frame'), 10_000);
      // What the deploy sees is the status alone.
      expect(out).toEqual({ type: 'status', deploymentId: 'dep-one-frame', generation: expect.any(Number), state: 'running' });
      await until('inventory written', async () => JSON.stringify(await containersOf(server.hostId)) === JSON.stringify([item('ct-one-frame')]));
      const sent = c.up.slice(before).map(inner);
      expect(sent).toEqual([{ type: 'status', deploymentId: 'dep-one-frame', generation: (out as { generation: number }).generation, state: 'running', containers: [item('ct-one-frame')] }]);
      await agent.stop();
      await until('host gone', () => !server.hub.connected(server.hostId));
    } finally {
      await relay.close();
    }
  });

  it('keeps reading the two frames of an older host, and ignores a malformed inventory inside a status but not the status', async () => {
    // An older agent, by hand: the same handshake and MAC frames, a status and then a `containers` message.
    const got: ServerMessage[] = [];
    const { ws, hostId } = await rawHost(server, (m, send) => {
      got.push(m);
      if (m.type !== 'assign') return;
      const { deploymentId, generation } = m.assignment;
      if (deploymentId === 'dep-old') {
        send({ type: 'status', deploymentId, generation, state: 'running' });
        send({ type: 'containers', containers: [item('ct-two-frames')] });
      } else {
        send({ type: 'status', deploymentId, generation, state: 'running', containers: [{ ...item('ct-bad'), state: 'exploded' as never }] });
      }
    });
    try {
      await until('welcomed', () => got.length > 0);
      const out = await server.hub.assign(hostId, assignment('dep-old'), 10_000);
      expect(out).toMatchObject({ type: 'status', deploymentId: 'dep-old', state: 'running' });
      await until('inventory written', async () => JSON.stringify(await containersOf(hostId)) === JSON.stringify([item('ct-two-frames')]));
      const bad = await server.hub.assign(hostId, assignment('dep-bad-inventory'), 10_000);
      expect(bad).toEqual({ type: 'status', deploymentId: 'dep-bad-inventory', generation: expect.any(Number), state: 'running' });
      // The malformed inventory was not written; the channel stays up.
      await new Promise((r) => setTimeout(r, 100));
      expect(await containersOf(hostId)).toEqual([item('ct-two-frames')]);
      expect(ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      ws.close();
      await until('host gone', () => !server.hub.connected(hostId));
    }
  });

  it('sends the two frames of the base protocol to a server whose welcome does not list the feature', async () => {
    // An older server, by hand, for a host enrolled with it.
    const stateDir = withBundle(tmp());
    const old = await handServer(stateDir);
    const received = old.received;
    const agent = await startAgent({
      serverUrl: old.url, stateDir, name: 'old-server-host', facts: async () => FACTS, maxBackoffMs: 300,
      runner: { run: async () => ({ state: 'running' }) }, inventory: async () => [item('ct-base-form')],
    });
    await until('welcomed', () => agent.connected());
    old.send({ type: 'assign', assignment: { ...assignment('dep-to-old-server'), generation: 1 } });
    try {
      await until('status and inventory received', () => received.some((m) => m.type === 'status'));
      await until('inventory after it', () => received.filter((m) => m.type === 'containers').length >= 2);
      const afterStatus = received.slice(received.findIndex((m) => m.type === 'status'));
      expect(afterStatus.slice(0, 2)).toEqual([
        { type: 'status', deploymentId: 'dep-to-old-server', generation: 1, state: 'running' },
        { type: 'containers', containers: [item('ct-base-form')] },
      ]);
    } finally {
      await agent.stop();
      await old.close();
    }
  });
});
