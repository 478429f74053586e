/**
 * An action or a log request for a host whose channel is registered but not yet welcomed (its
 * hello's `UPDATE hosts` still being written) went out at once: the agent refuses anything sent
 * before its welcome and drops the channel. Now they wait for the welcome within their timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { channelServer, until, type ChannelServer } from './support.js';

describe('requests to a host not yet welcomed', () => {
  let s: ChannelServer;
  beforeAll(async () => {
    s = await channelServer();
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  for (const kind of ['action', 'logs'] as const) {
    it(`${kind}: sent after the welcome, the channel kept`, async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const db = s.ctx.db;
      const run = db.run.bind(db);
      // The hello's write held back: the channel is registered, its welcome not yet sent.
      (db as { run: typeof db.run }).run = async (sql, params) => {
        if (sql.startsWith('UPDATE hosts SET facts')) await gate;
        return run(sql, params);
      };
      const agent = await s.agent(s.url);
      try {
        await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
        expect(agent.connected()).toBe(false);
        const request = kind === 'action'
          ? s.hub.requestAction(s.hostId, 'no-such-container', { action: 'stop', graceSeconds: 0 }, 5_000)
          : s.hub.requestLogs(s.hostId, 'no-such-container', 1024, 5_000);
        await new Promise((r) => setTimeout(r, 300));
        release();
        const out = await request;
        // The host's own answer (it knows no such container), not the channel's loss.
        expect(out).not.toMatchObject({ code: 'HOST_UNAVAILABLE' });
        expect(agent.connected()).toBe(true);
      } finally {
        release();
        (db as { run: typeof db.run }).run = run;
        await agent.stop();
        await until('channel gone', () => !s.hub.connected(s.hostId));
      }
    }, 60_000);
  }

  it('a request for a channel never welcomed answers HOST_UNAVAILABLE within its timeout', async () => {
    (s.hub as unknown as { conns: Map<string, unknown> }).conns.set('never', {
      hostId: 'never', facts: {}, send: () => { throw new Error('sent before the welcome'); }, close: () => undefined, end: () => undefined, kick: () => undefined,
      sendShared: () => undefined, welcomed: new Promise<boolean>(() => undefined),
    });
    try {
      const t0 = Date.now();
      expect(await s.hub.requestLogs('never', 'web', 1024, 300)).toEqual({ code: 'HOST_UNAVAILABLE' });
      expect(await s.hub.requestAction('never', 'web', { action: 'start' }, 300)).toMatchObject({ code: 'HOST_UNAVAILABLE' });
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      (s.hub as unknown as { conns: Map<string, unknown> }).conns.delete('never');
    }
  }, 30_000);
});
