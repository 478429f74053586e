/**
 * PostgreSQL, the real channel: an assignment made while a host's hello is still being written
 * (its `hosts` row held by another transaction, as a busy replica's writes do) gets a generation
 * above what the hello reported. The channel used to be registered before the hello's lift
 * committed: an assignment in that window took the stale number and the host refused it
 * (STALE_GENERATION). It was also sent before the welcome, which the host refuses: it now waits
 * for the welcome.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import { answersRunning, rawHost, testAssignment, until, type ChannelServer } from '../server/channel/support.js';
import { heldLock } from './held-lock.js';
import { pgChannel } from './pg-channel.js';

const assignment = testAssignment('dep-racing-hello');

describe('an assignment racing a hello on PostgreSQL', () => {
  const ch = pgChannel();
  let s: ChannelServer;
  let other: Db;
  beforeAll(() => void ({ s, other } = ch));

  it('is given a generation above what the hello reported', async () => {
    const REPORTED = 1000;
    // Holds the host's row against the hello's write of it (facts, replica) until released; a row
    // lock that a generation's foreign key check does not wait for.
    const held = await heldLock(other, 'SELECT id FROM hosts WHERE id = ? FOR NO KEY UPDATE', [s.hostId]);
    const got: ServerMessage[] = [];
    const { ws } = await rawHost(s, answersRunning(got), { generation: REPORTED });
    try {
      // Assigned as soon as the hub takes the channel as the host's, its hello still being written.
      await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
      const result = s.hub.assign(s.hostId, assignment, 20_000);
      await new Promise((r) => setTimeout(r, 300));
      await held.release();
      await until('assignment sent', () => got.some((m) => m.type === 'assign'));
      const sent = got.find((m) => m.type === 'assign') as Extract<ServerMessage, { type: 'assign' }>;
      expect(sent.assignment.generation).toBeGreaterThan(REPORTED);
      expect(await result).toMatchObject({ type: 'status', generation: sent.assignment.generation, state: 'running' });
      // The welcome first: a host refuses any message before it (host/agent/agent.ts).
      expect(got.map((m) => m.type)).toEqual(['welcome', 'assign']);
    } finally {
      await held.release();
      ws.close();
    }
  }, 60_000);
});
