/**
 * PostgreSQL: a host's generation row held by another transaction (another replica's wedged
 * connection, a long transaction). The generations transactions of a replica run one at a time:
 * one waiting on that lock stalled every later assignment of the replica, to any host, for good.
 * Now its wait is bounded (lock_timeout): its assignments answer GENERATION_BUSY (the deploy is
 * tried again), an assignment waiting behind it answers within its own timeout, and the next
 * batch goes on.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { GENERATION_LOCK_TIMEOUT_MS } from '../../server/channel/hub.js';
import { answersRunning, rawHost, testAssignment, until, type ChannelServer } from '../server/channel/support.js';
import { heldLock } from './held-lock.js';
import { pgChannel } from './pg-channel.js';

const assignment = (deploymentId: string) => testAssignment(deploymentId);

describe("a host's generation row locked elsewhere (PostgreSQL)", () => {
  const ch = pgChannel();
  let s: ChannelServer;
  let other: Db;
  beforeAll(() => void ({ s, other } = ch));

  it('fails that batch with GENERATION_BUSY in bounded time, and later assignments go on', async () => {
    const { ws } = await rawHost(s, answersRunning());
    try {
      await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
      // The host has its row (assigned before): the next raise locks it.
      expect(await s.hub.assign(s.hostId, assignment('dep-0'), 10_000)).toMatchObject({ type: 'status', state: 'running' });
      const held = await heldLock(other, 'SELECT host_id FROM host_generations WHERE host_id = ? FOR UPDATE', [s.hostId]);
      try {
        const t0 = Date.now();
        const stuck = s.hub.assign(s.hostId, assignment('dep-1'), 60_000);
        await new Promise((r) => setTimeout(r, 100));
        // The next batch, queued behind the stuck one: answered within its own timeout.
        const behind = await s.hub.assign(s.hostId, assignment('dep-2'), 1_000);
        expect(behind).toEqual({ type: 'timeout' });
        expect(Date.now() - t0).toBeLessThan(GENERATION_LOCK_TIMEOUT_MS);
        expect(await stuck).toMatchObject({ type: 'status', state: 'refused', code: 'GENERATION_BUSY' });
        expect(Date.now() - t0).toBeLessThan(GENERATION_LOCK_TIMEOUT_MS + 3_000);
      } finally {
        await held.release();
      }
      // The lock gone: assignments go on, on this replica's chain.
      expect(await s.hub.assign(s.hostId, assignment('dep-3'), 10_000)).toMatchObject({ type: 'status', deploymentId: 'dep-3', state: 'running' });
    } finally {
      ws.close();
    }
  }, 60_000);
});
