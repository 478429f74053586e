/**
 * SQLite has one in-process writer: a generations transaction queued behind a long one (over
 * GENERATION_WRITE_BOUND_MS) is waited for within the assignment's own timeout, not failed with
 * GENERATION_BUSY (the bound is PostgreSQL's, for a connection that never answers).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GENERATION_WRITE_BOUND_MS } from '../../../server/channel/hub.js';
import { answersRunning, channelServer, rawHost, testAssignment, until, type ChannelServer } from './support.js';

const assignment = (deploymentId: string) => testAssignment(deploymentId);

describe('generations on SQLite', () => {
  let s: ChannelServer;
  beforeAll(async () => {
    s = await channelServer();
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('a generations transaction queued past the PostgreSQL bound behind another runs', async () => {
    const { ws } = await rawHost(s, answersRunning());
    try {
      await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let inside!: () => void;
      const entered = new Promise<void>((r) => (inside = r));
      const long = s.ctx.db.tx(async () => {
        inside();
        await gate;
      });
      await entered;
      setTimeout(release, GENERATION_WRITE_BOUND_MS + 1_000).unref();
      const out = await s.hub.assign(s.hostId, assignment('dep-sqlite'), 60_000);
      await long;
      expect(out).toMatchObject({ type: 'status', deploymentId: 'dep-sqlite', state: 'running' });
    } finally {
      ws.close();
    }
  }, 60_000);
});
