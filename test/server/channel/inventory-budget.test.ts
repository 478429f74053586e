/**
 * An enrolled host is trusted for what its inventory says, not for how often it changes: one that
 * sends a different inventory in every frame (compromised or broken) gets a bounded number of
 * writes to the hosts table, and its inventory is written again once it calms down.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { InventoryItem } from '../../../src/protocol/messages.js';
import { INVENTORY_BUDGET } from '../../../server/channel/alert-budget.js';
import { channelServer, until, type ChannelServer } from './support.js';

const item = (n: number): InventoryItem => ({ id: `ct-flood-${n}`, app: 'web', imageDigest: `sha256:${'c'.repeat(64)}`, state: 'running', health: 'none', restarts: 0 });

describe('a host flooding changed inventories', () => {
  let server: ChannelServer;
  beforeAll(async () => void (server = await channelServer()), 60_000);
  afterAll(async () => server?.close());

  it('has a bounded number of them written', async () => {
    let n = 0;
    // Each a different inventory of ~1,000 containers (~150 KB of JSON).
    const agent = await server.agent(server.url, { inventory: async () => { n++; return Array.from({ length: 1000 }, (_, i) => item(n * 1000 + i)); } });
    await until('connected', () => Boolean(server.hub.connected(server.hostId)));
    let writes = 0;
    const db = server.ctx.db;
    const tx = db.tx.bind(db);
    db.tx = (async (fn: (t: typeof db) => Promise<unknown>) => tx(async (t) => {
      const run = t.run.bind(t);
      t.run = (async (sql: string, params?: unknown[]) => {
        if (/SET containers =/.test(sql)) writes++;
        return run(sql, params);
      }) as typeof t.run;
      return fn(t as typeof db);
    })) as typeof db.tx;
    try {
      const sent = 200;
      const started = Date.now();
      for (let i = 0; i < sent; i++) {
        await agent.resync();
        // One frame a turn of the server, as a host writing as fast as its channel goes.
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(writes).toBeGreaterThan(0);
      // The burst, then one a second (a loaded machine makes the flood take longer); unbounded, all ~200.
      const seconds = (Date.now() - started) / 1000;
      expect(writes).toBeLessThanOrEqual(INVENTORY_BUDGET.burst + Math.ceil(seconds * INVENTORY_BUDGET.perSecond) + 2);
      expect(writes).toBeLessThan(sent / 2);
    } finally {
      db.tx = tx;
      await agent.stop();
    }
  }, 60_000);

  it('has the last one of a burst written within about a second, not at the host\'s next resend', async () => {
    let n = 0;
    let last: InventoryItem[] = [];
    const agent = await server.agent(server.url, { inventory: async () => { n++; last = Array.from({ length: 20 }, (_, i) => item(1_000_000 + n * 100 + i)); return last; } });
    await until('connected', () => Boolean(server.hub.connected(server.hostId)));
    try {
      // Well past the budget's burst (spent by the test above, or by this one).
      for (let i = 0; i < INVENTORY_BUDGET.burst + 20; i++) {
        await agent.resync();
        await new Promise((r) => setImmediate(r));
      }
      const final = JSON.stringify(last);
      const stored = async () => (await server.ctx.db.query<{ containers: string | null }>('SELECT containers FROM hosts WHERE id = ?', [server.hostId]))[0]?.containers;
      // The host resends only every 30 s: without the pending write the row keeps an older one.
      await until('the burst\'s last inventory written', async () => (await stored()) === final, 3000);
    } finally {
      await agent.stop();
    }
  }, 30_000);
});
