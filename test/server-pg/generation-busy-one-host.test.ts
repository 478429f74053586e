/**
 * PostgreSQL: one host's generation row held by another transaction, and another host assigned in
 * the same turn (another deploy). The batch's transaction failed on that one lock (55P03), and
 * every assignment of the batch answered GENERATION_BUSY, the other host's included: now only the
 * held host's assignment does, the other's is sent and runs.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { GENERATION_LOCK_TIMEOUT_MS } from '../../server/channel/hub.js';
import { raiseGenerations } from '../../server/hosts/generations.js';
import { answersRunning, rawHost, testAssignment, until, type ChannelServer } from '../server/channel/support.js';
import { heldLock } from './held-lock.js';
import { pgChannel } from './pg-channel.js';

const assignment = (deploymentId: string) => testAssignment(deploymentId);

describe("one host's generation row locked elsewhere, others assigned with it (PostgreSQL)", () => {
  const ch = pgChannel();
  let s: ChannelServer;
  let other: Db;
  beforeAll(() => void ({ s, other } = ch));

  it("only the held host's assignment answers GENERATION_BUSY; the other host's is sent and runs", async () => {
    const got: string[] = [];
    const { ws } = await rawHost(s, (m, send) => {
      if (m.type !== 'assign') return;
      got.push(m.assignment.deploymentId);
      send({ type: 'status', deploymentId: m.assignment.deploymentId, generation: m.assignment.generation, state: 'running' });
    });
    // A second enrolled host, connected here (never sent to: its generation is what is held).
    await other.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', ['host-held', 'held', 'k', '{}', '{}', 0]);
    await other.tx((t) => raiseGenerations(t, new Map([['host-held', 1]])));
    const sentToHeld: string[] = [];
    (s.hub as unknown as { conns: Map<string, unknown> }).conns.set('host-held', {
      hostId: 'host-held', facts: {}, send: () => undefined, close: () => undefined, end: () => undefined, kick: () => undefined,
      sendShared: (_b: Buffer, tail: string) => void sentToHeld.push(tail), welcomed: Promise.resolve(true),
    });
    try {
      await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
      expect(await s.hub.assign(s.hostId, assignment('dep-0'), 10_000)).toMatchObject({ type: 'status', state: 'running' });
      const held = await heldLock(other, 'SELECT host_id FROM host_generations WHERE host_id = ? FOR UPDATE', ['host-held']);
      try {
        // One turn: one batch (the held host assigned twice, two apps: its rows locked apart first).
        const t0 = Date.now();
        const [a, a2, b] = await Promise.all([
          s.hub.assign('host-held', assignment('dep-held'), 30_000),
          s.hub.assign('host-held', { ...assignment('dep-held-2'), app: 'api' }, 30_000),
          s.hub.assign(s.hostId, assignment('dep-free'), 30_000).then((r) => ({ r, ms: Date.now() - t0 })),
        ]);
        expect(a2).toMatchObject({ type: 'status', state: 'refused', code: 'GENERATION_BUSY' });
        // Not held up by the wait for the held host's row either.
        expect(b.ms).toBeLessThan(GENERATION_LOCK_TIMEOUT_MS);
        expect(b.r).toMatchObject({ type: 'status', deploymentId: 'dep-free', state: 'running' });
        expect(a).toMatchObject({ type: 'status', state: 'refused', code: 'GENERATION_BUSY' });
        expect(sentToHeld).toEqual([]);
        expect(got).toEqual(['dep-0', 'dep-free']);
      } finally {
        await held.release();
      }
      // Released: the held host's generation goes on from where it was (nothing raised for it meanwhile).
      const [row] = await other.query<{ generation: number }>('SELECT generation FROM host_generations WHERE host_id = ?', ['host-held']);
      expect(Number(row.generation)).toBe(1);
    } finally {
      (s.hub as unknown as { conns: Map<string, unknown> }).conns.delete('host-held');
      ws.close();
    }
  }, 60_000);

  it('a host held briefly (under the lock timeout) is waited for apart: both assignments run', async () => {
    await other.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', ['host-brief', 'brief', 'k', '{}', '{}', 0]);
    await other.tx((t) => raiseGenerations(t, new Map([['host-brief', 1]])));
    const sentToBrief: string[] = [];
    (s.hub as unknown as { conns: Map<string, unknown> }).conns.set('host-brief', {
      hostId: 'host-brief', facts: {}, send: () => undefined, close: () => undefined, end: () => undefined, kick: () => undefined,
      sendShared: (_b: Buffer, tail: string) => void sentToBrief.push(tail), welcomed: Promise.resolve(true),
    });
    const { ws } = await rawHost(s, answersRunning());
    try {
      await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
      const held = await heldLock(other, 'SELECT host_id FROM host_generations WHERE host_id = ? FOR UPDATE', ['host-brief']);
      const brief = s.hub.assign('host-brief', assignment('dep-brief'), 3_000);
      const free = s.hub.assign(s.hostId, assignment('dep-free-2'), 10_000);
      expect(await free).toMatchObject({ type: 'status', deploymentId: 'dep-free-2', state: 'running' });
      expect(sentToBrief).toEqual([]);
      await held.release();
      // Sent once the lock was given back (the fake host never answers: its assignment times out).
      await until('sent to the brief host', () => sentToBrief.length === 1);
      expect(await brief).toEqual({ type: 'timeout' });
      expect(sentToBrief[0]).toContain('"generation":2');
    } finally {
      (s.hub as unknown as { conns: Map<string, unknown> }).conns.delete('host-brief');
      ws.close();
    }
  }, 60_000);
});
