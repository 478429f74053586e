/**
 * A host's assignment generation over the real channel (#14 target 8 moved it to its own table):
 * a hello reporting a higher generation than the server knows (a restored database, a failover)
 * lifts it, so the next assignment is above it and not refused as stale; a hello reporting less
 * never lowers it; GET /api/v1/hosts shows it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { WebSocket } from 'ws';
import type { Assignment, ServerMessage } from '../../../src/protocol/messages.js';
import { answersRunning, channelServer, rawHost, until, type ChannelServer } from './support.js';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const assignment = (deploymentId: string): Omit<Assignment, 'generation'> => ({
  deploymentId, environment: 'production', app: 'web', bundle: `registry.example/web@${DIGEST}`, bundleDigest: DIGEST, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${DIGEST}`,
});

describe('a host\'s generation across hellos', () => {
  let s: ChannelServer;
  beforeAll(async () => void (s = await channelServer()), 30_000);
  afterAll(async () => s?.close());

  const listed = async () => {
    const res = await fetch(`${s.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${s.adminKey}` } });
    return ((await res.json()) as { hosts: { id: string; generation: number }[] }).hosts.find((h) => h.id === s.hostId)?.generation;
  };
  /** Connects by hand, saying it accepted `generation`; answers every assignment `running`, recording what it got. */
  async function connect(generation: number): Promise<{ ws: WebSocket; got: ServerMessage[] }> {
    const got: ServerMessage[] = [];
    const { ws } = await rawHost(s, answersRunning(got), { generation });
    await until('welcomed', () => got.some((m) => m.type === 'welcome') && Boolean(s.hub.connected(s.hostId)));
    return { ws, got };
  }
  const drop = async (ws: WebSocket) => {
    ws.close();
    await until('disconnected', () => !s.hub.connected(s.hostId));
  };

  it('lifts to what a hello reports, never lowers, and the next assignment is above it', async () => {
    expect(await listed()).toBe(0);
    const first = await connect(41);
    expect(await listed()).toBe(41);
    expect(await s.hub.assign(s.hostId, assignment('dep-after-restore'), 10_000)).toMatchObject({ type: 'status', generation: 42, state: 'running' });
    expect(first.got.filter((m) => m.type === 'assign').map((m) => (m as Extract<ServerMessage, { type: 'assign' }>).assignment.generation)).toEqual([42]);
    expect(await listed()).toBe(42);
    await drop(first.ws);

    // An older report (another agent's state, a replayed hello) does not take it back.
    const second = await connect(5);
    const welcome = second.got.find((m) => m.type === 'welcome') as Extract<ServerMessage, { type: 'welcome' }>;
    expect(welcome.generation).toBe(42);
    expect(await s.hub.assign(s.hostId, assignment('dep-next'), 10_000)).toMatchObject({ type: 'status', generation: 43, state: 'running' });
    expect(await listed()).toBe(43);
    await drop(second.ws);
  });
});
