/**
 * Which status answers an assignment (HostHub.assign's waiter, data since round nine of #14 target
 * 8 rather than a closure per assignment): only a final state of its own generation. Two
 * assignments of one deployment to one host each get their own answer, whatever the order the
 * host answers in; a status of another generation or a state that is not final answers nothing,
 * and the assignment ends at its timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { WebSocket } from 'ws';
import type { HostMessage, ServerMessage } from '../../../src/protocol/messages.js';
import { channelServer, rawHost, testAssignment, until, type ChannelServer } from './support.js';

type Assign = Extract<ServerMessage, { type: 'assign' }>;

describe("an assignment's answer", () => {
  let s: ChannelServer;
  let ws: WebSocket | undefined;
  /** What the host does with each assignment, set by each test. */
  let onAssign: (m: Assign, send: (x: HostMessage) => void) => void = () => undefined;
  beforeAll(async () => {
    s = await channelServer();
    const got: ServerMessage[] = [];
    ({ ws } = await rawHost(s, (m, send) => {
      got.push(m);
      if (m.type === 'assign') onAssign(m, send);
    }));
    await until('welcomed', () => got.some((m) => m.type === 'welcome') && Boolean(s.hub.connected(s.hostId)));
  }, 30_000);
  afterAll(async () => {
    ws?.close();
    await s?.close();
  });

  it('two assignments of one deployment: each answered by a final status of its own generation, in either order', async () => {
    const held: { m: Assign; send: (x: HostMessage) => void }[] = [];
    onAssign = (m, send) => {
      held.push({ m, send });
      if (held.length < 2) return;
      const [first, second] = held;
      const status = (a: Assign, state: 'running' | 'failed' | 'created') => ({ type: 'status' as const, deploymentId: a.assignment.deploymentId, generation: a.assignment.generation, state });
      // The second first, and a state that is not final for the first before its final one.
      second.send(status(second.m, 'failed'));
      first.send(status(first.m, 'created'));
      first.send(status(first.m, 'running'));
    };
    const a = testAssignment('dep-waiters');
    const [one, two] = await Promise.all([s.hub.assign(s.hostId, a, 10_000), s.hub.assign(s.hostId, a, 10_000)]);
    expect(held).toHaveLength(2);
    const gens = held.map((h) => h.m.assignment.generation);
    expect(gens[1]).toBe(gens[0] + 1);
    expect(one).toMatchObject({ type: 'status', generation: gens[0], state: 'running' });
    expect(two).toMatchObject({ type: 'status', generation: gens[1], state: 'failed' });
  });

  it('a status of another generation, or one not final, answers nothing: the assignment times out', async () => {
    onAssign = (m, send) => {
      const { deploymentId, generation } = m.assignment;
      send({ type: 'status', deploymentId, generation: generation - 1, state: 'running' });
      send({ type: 'status', deploymentId, generation: generation + 1, state: 'failed' });
      send({ type: 'status', deploymentId, generation, state: 'created' });
    };
    const started = Date.now();
    expect(await s.hub.assign(s.hostId, testAssignment('dep-unanswered'), 1_500)).toEqual({ type: 'timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });
});
