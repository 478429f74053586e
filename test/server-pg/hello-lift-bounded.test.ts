/**
 * PostgreSQL: a hello that lifts its host's generation while that host's generation row is held by
 * another transaction (another replica's wedged connection, a long transaction), or while the
 * database connection stops answering. The lift waited for as long as that lasted: the host stayed
 * authenticated and never welcomed, a pooled connection held meanwhile. Now bounded like the
 * raises: the hello is closed (1011) after the lock timeout, or the 15 s bound, and the host's next
 * hello is welcomed with its generation lifted. A hello with nothing to lift (an ordinary
 * reconnect) takes no lock at all: welcomed at once even while the row is held.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { WebSocket } from 'ws';
import type { Db } from '../../server/store/db.js';
import { GENERATION_LOCK_TIMEOUT_MS, GENERATION_WRITE_BOUND_MS } from '../../server/channel/hub.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import { answersRunning, channelServer, rawHost, tcpProxy, testAssignment, until, type ChannelServer, type TcpProxy } from '../server/channel/support.js';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { heldLock } from './held-lock.js';
import { pgChannel } from './pg-channel.js';

const REPORTED = 1000;

/** The close code `ws` gets within `ms`, or 'open'; the timer cleared either way. */
async function closedWithin(ws: WebSocket, ms: number): Promise<number | 'open'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<number>((resolve) => ws.on('close', (code) => resolve(code))),
      new Promise<'open'>((resolve) => (timer = setTimeout(() => resolve('open'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
    ws.terminate();
  }
}

/** The host gets its generation row (assigned once), then goes away; answers the generation it accepted. */
async function assignedOnceThenGone(s: ChannelServer): Promise<number> {
  // A previous test's channel, closing: not the one assigned to here.
  await until('no channel', () => !s.hub.connected(s.hostId));
  const got: ServerMessage[] = [];
  const first = await rawHost(s, answersRunning(got));
  await until('channel registered', () => Boolean(s.hub.connected(s.hostId)));
  expect(await s.hub.assign(s.hostId, testAssignment(`dep-${Date.now()}`), 10_000)).toMatchObject({ type: 'status', state: 'running' });
  first.ws.close();
  await until('channel gone', () => !s.hub.connected(s.hostId));
  return (got.find((m) => m.type === 'assign') as Extract<ServerMessage, { type: 'assign' }>).assignment.generation;
}

describe("a hello's generation lift with the row locked elsewhere (PostgreSQL)", () => {
  const ch = pgChannel();
  let s: ChannelServer;
  let other: Db;
  beforeAll(() => void ({ s, other } = ch));

  it('closes that hello after the lock timeout; the next one is welcomed and lifted', async () => {
    await assignedOnceThenGone(s);
    const held = await heldLock(other, 'SELECT host_id FROM host_generations WHERE host_id = ? FOR UPDATE', [s.hostId]);
    try {
      const t0 = Date.now();
      const got: ServerMessage[] = [];
      const stuck = await rawHost(s, (m) => void got.push(m), { generation: REPORTED });
      // Waited for a little past the bound, not for good: without it the hello waited on the lock.
      expect(await closedWithin(stuck.ws, GENERATION_LOCK_TIMEOUT_MS + 5_000)).toBe(1011);
      // Closed by the lock timeout, not by something else at once.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(GENERATION_LOCK_TIMEOUT_MS - 500);
      expect(got.map((m) => m.type)).not.toContain('welcome');
      expect(s.hub.connected(s.hostId)).toBeFalsy();
    } finally {
      await held.release();
    }

    // The lock gone: welcomed, and the generation lifted above what the hello reported.
    const got: ServerMessage[] = [];
    const again = await rawHost(s, answersRunning(got), { generation: REPORTED });
    try {
      await until('welcomed', () => got.some((m) => m.type === 'welcome'));
      expect(await s.hub.assign(s.hostId, testAssignment('dep-lifted'), 10_000)).toMatchObject({ type: 'status', state: 'running' });
      const sent = got.find((m) => m.type === 'assign') as Extract<ServerMessage, { type: 'assign' }>;
      expect(sent.assignment.generation).toBeGreaterThan(REPORTED);
    } finally {
      again.ws.close();
    }
  }, 60_000);

  it('welcomes a hello with nothing to lift at once, the row held or not', async () => {
    const accepted = await assignedOnceThenGone(s);
    const held = await heldLock(other, 'SELECT host_id FROM host_generations WHERE host_id = ? FOR UPDATE', [s.hostId]);
    const got: ServerMessage[] = [];
    const h = await rawHost(s, (m) => void got.push(m), { generation: accepted });
    try {
      await until('welcomed', () => got.some((m) => m.type === 'welcome'), GENERATION_LOCK_TIMEOUT_MS - 1_000);
    } finally {
      await held.release();
      h.ws.close();
    }
  }, 60_000);
});

describe("a hello's generation lift over a database connection that stops answering (PostgreSQL)", () => {
  let pg: Postgres;
  let proxy: TcpProxy;
  let s: ChannelServer;
  beforeAll(async () => {
    pg = await startPostgres();
    // The server's database connections pass through a proxy that can freeze them (a network
    // dropped without a FIN).
    proxy = await tcpProxy(pg.url.replace(/^postgres:\/\/ct@/, 'http://'));
    s = await channelServer({ databaseUrl: pg.url.replace(/:\d+\//, `:${new URL(proxy.url).port}/`) });
  }, 60_000);
  afterAll(async () => {
    proxy?.close();
    await s?.close().catch(() => undefined);
    await pg?.stop();
  });

  it('closes that hello within the bound', async () => {
    await assignedOnceThenGone(s);
    const t0 = Date.now();
    const stuck = await rawHost(s, () => undefined, { generation: REPORTED });
    // At the challenge (the server's reads done), before the hello is sent: every pooled
    // connection open now stops answering.
    stuck.ws.prependOnceListener('message', () => proxy.freeze());
    expect(await closedWithin(stuck.ws, GENERATION_WRITE_BOUND_MS + 10_000)).toBe(1011);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(GENERATION_WRITE_BOUND_MS - 1_000);
    expect(s.hub.connected(s.hostId)).toBeFalsy();
  }, 90_000);
});
