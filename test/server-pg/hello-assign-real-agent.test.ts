/**
 * PostgreSQL, the real agent: an assignment made while its hello is still being written (the
 * host's row held by another transaction, as a busy replica's writes do). The channel is
 * registered before that write (a removal or a newer channel must find it) and the welcome sent
 * after it; an assignment sent in between reached the agent before its welcome, which it refuses
 * (host/agent/agent.ts), and the deploy waited for its timeout. It now waits for the welcome.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { testAssignment, until, type ChannelServer } from '../server/channel/support.js';
import { heldLock } from './held-lock.js';
import { pgChannel } from './pg-channel.js';

const BYTES = Buffer.from('a bundle only this test runs');
const DIGEST = `sha256:${createHash('sha256').update(BYTES).digest('hex')}`;
const assignment = testAssignment('dep-real-agent', DIGEST);

describe('the real agent assigned to while its hello is written (PostgreSQL)', () => {
  const ch = pgChannel();
  let s: ChannelServer;
  let other: Db;
  beforeAll(async () => {
    ({ s, other } = ch);
    // The bundle the server holds (the agent downloads it); the runner here only says it ran.
    mkdirSync(join(s.ctx.config.dataDir, 'bundles'), { recursive: true });
    writeFileSync(join(s.ctx.config.dataDir, 'bundles', `${DIGEST.slice(7)}.ctp`), BYTES);
  });

  it('gets the assignment after its welcome, and the deploy succeeds', async () => {
    const held = await heldLock(other, 'SELECT id FROM hosts WHERE id = ? FOR NO KEY UPDATE', [s.hostId]);
    const refusals: string[] = [];
    const ran: string[] = [];
    const agent = await s.agent(s.url, {
      runner: { run: async (a) => (ran.push(a.deploymentId), { state: 'running' }) },
      log: (m: string, e?: unknown) => void (/refus|fail/i.test(m) && refusals.push(`${m} ${JSON.stringify(e ?? '')}`)),
    });
    try {
      // Registered, its hello's write of the row still waiting for the holder.
      await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
      expect(agent.connected()).toBe(false);
      const result = s.hub.assign(s.hostId, assignment, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      await held.release();
      expect(await result).toMatchObject({ type: 'status', deploymentId: 'dep-real-agent', state: 'running' });
      expect(ran).toEqual(['dep-real-agent']);
      expect(refusals).toEqual([]);
    } finally {
      await held.release();
    }
  }, 60_000);
});
