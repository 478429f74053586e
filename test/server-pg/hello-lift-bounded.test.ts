/**
 * PostgreSQL: a hello that lifts its host's generation while that host's generation row is held by
 * another transaction (another replica's wedged connection, a long transaction). The lift waited
 * for the lock for as long as it was held: the host stayed authenticated and never welcomed, a
 * pooled connection held meanwhile. Now bounded like the raises: the hello is closed after the
 * lock timeout, and the host's next hello, the lock gone, is welcomed with its generation lifted.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { GENERATION_LOCK_TIMEOUT_MS } from '../../server/channel/hub.js';
import type { HostMessage, ServerMessage } from '../../src/protocol/messages.js';
import { rawHost, testAssignment, until, type ChannelServer } from '../server/channel/support.js';
import { heldLock } from './held-lock.js';
import { pgChannel } from './pg-channel.js';

describe("a hello's generation lift with the row locked elsewhere (PostgreSQL)", () => {
  const ch = pgChannel();
  let s: ChannelServer;
  let other: Db;
  beforeAll(() => void ({ s, other } = ch));

  it('closes that hello in bounded time; the next one is welcomed and lifted', async () => {
    const running = (m: ServerMessage, send: (x: HostMessage) => void) => {
      if (m.type === 'assign') send({ type: 'status', deploymentId: m.assignment.deploymentId, generation: m.assignment.generation, state: 'running' });
    };
    // The host gets its generation row (assigned once), then goes away.
    const first = await rawHost(s, running);
    await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
    expect(await s.hub.assign(s.hostId, testAssignment('dep-0'), 10_000)).toMatchObject({ type: 'status', state: 'running' });
    first.ws.close();
    await until('channel gone', () => !s.hub.connected(s.hostId));

    const REPORTED = 1000;
    const held = await heldLock(other, 'SELECT host_id FROM host_generations WHERE host_id = ? FOR UPDATE', [s.hostId]);
    try {
      const t0 = Date.now();
      const got: ServerMessage[] = [];
      const stuck = await rawHost(s, (m) => void got.push(m), { generation: REPORTED });
      // Waited for a little past the bound, not for good: without it the hello waited on the lock.
      const closed = await Promise.race([
        new Promise<number>((resolve) => stuck.ws.on('close', (code) => resolve(code))),
        new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), GENERATION_LOCK_TIMEOUT_MS + 5_000)),
      ]);
      if (closed === 'open') stuck.ws.terminate();
      expect(closed).toBe(1011);
      expect(Date.now() - t0).toBeLessThan(GENERATION_LOCK_TIMEOUT_MS + 5_000);
      expect(got.map((m) => m.type)).not.toContain('welcome');
      expect(s.hub.connected(s.hostId)).toBeFalsy();
    } finally {
      await held.release();
    }

    // The lock gone: welcomed, and the generation lifted above what the hello reported.
    const got: ServerMessage[] = [];
    const again = await rawHost(s, (m, send) => {
      got.push(m);
      running(m, send);
    }, { generation: REPORTED });
    try {
      await until('welcomed', () => got.some((m) => m.type === 'welcome'));
      expect(await s.hub.assign(s.hostId, testAssignment('dep-1'), 10_000)).toMatchObject({ type: 'status', state: 'running' });
      const sent = got.find((m) => m.type === 'assign') as Extract<ServerMessage, { type: 'assign' }>;
      expect(sent.assignment.generation).toBeGreaterThan(REPORTED);
    } finally {
      again.ws.close();
    }
  }, 60_000);
});
