/**
 * A deploy's fan-out over the host channel (#14 target 8): real agents connected to the real hub,
 * assignments to all of them at once get their generations in one transaction (a host assigned
 * twice in one turn gets both, in order), the serialised assignment each host opens is the one
 * sent, inventories are written together and only when they change, and a host whose row went
 * away mid-deploy fails alone.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testServer } from '../support.js';
import { createApiKey } from '../../../server/auth/api-keys.js';
import { HostHub } from '../../../server/channel/hub.js';
import { loadServerKey } from '../../../server/channel/server-key.js';
import { hostRoutes } from '../../../server/routes/hosts.js';
import { startAgent, type Agent } from '../../../host/agent/agent.js';
import type { Assignment, InventoryItem } from '../../../src/protocol/messages.js';
import { FACTS, until } from './support.js';

const HOSTS = 6;
const DIGEST = `sha256:${'a'.repeat(64)}`;

interface SimHost { agent: Agent; got: Assignment[]; inventory: InventoryItem[] }

describe('deploy fan-out over the host channel', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let hub!: HostHub;
  let admin = '';
  const hosts: SimHost[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'ct-fanout-'));

  beforeAll(async () => {
    server = await testServer({}, {
      extend: async (ctx) => {
        const key = await loadServerKey(ctx.config.dataDir);
        hub = new HostHub(ctx, key.privateKey);
        return { routers: [hostRoutes(ctx, hub, key.publicKeyB64)], onListen: (s) => hub.attach(s), close: async () => hub.close() };
      },
    });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    for (let i = 0; i < HOSTS; i++) {
      const res = await fetch(`${server.url}/api/v1/hosts/tokens`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"labels":{}}' });
      const { token } = (await res.json()) as { token: string };
      const h: SimHost = { got: [], inventory: [] } as unknown as SimHost;
      h.agent = await startAgent({
        serverUrl: server.url, stateDir: join(dir, `h${i}`), name: `fan-${i}`, enrollToken: token, facts: async () => FACTS, maxBackoffMs: 300,
        // The bundle download is the host's and is refused here (no bundle served): the runner is not reached.
        runner: { run: async () => ({ state: 'running' }) },
        inventory: async () => h.inventory,
      });
      hosts.push(h);
    }
    await until('all hosts connected', () => hosts.every((h) => hub.connected(h.agent.hostId)));
  }, 60_000);
  afterAll(async () => {
    for (const h of hosts) await h.agent.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // What an operator sees (GET /api/v1/hosts), read from where the hub keeps it.
  const generations = async () => {
    const res = await fetch(`${server.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${admin}` } });
    return new Map(((await res.json()) as { hosts: { id: string; generation: number }[] }).hosts.map((h) => [h.id, h.generation]));
  };
  const base = (deploymentId: string): Omit<Assignment, 'generation'> => ({
    deploymentId, environment: 'production', app: 'web', bundle: 'registry.example/web@sha256:' + 'b'.repeat(64), bundleDigest: DIGEST, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${DIGEST}`,
  });

  it('gives every host of one fan-out its next generation, the same assignment, and the hosts answer', async () => {
    const before = await generations();
    // Timers made during the fan-out and still pending once every host answered.
    const pending = new Set<number>();
    const hook = createHook({
      // The hub's timeouts of these assignments: the only timers of this length.
      init: (id, type, _trigger, resource) => void (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === 9_876 && pending.add(id)),
      destroy: (id) => void pending.delete(id),
    }).enable();
    // One object for all hosts, as a deploy sends (serialised once by the hub).
    const a = base('dep-fanout-1');
    const out = await Promise.all(hosts.map((h) => hub.assign(h.agent.hostId, a, 9_876)));
    await new Promise((r) => setImmediate(r));
    hook.disable();
    // An answered assignment leaves no timeout behind (each kept one per host for the whole timeout).
    expect(pending.size).toBe(0);
    const after = await generations();
    for (const h of hosts) expect(after.get(h.agent.hostId)).toBe(before.get(h.agent.hostId)! + 1);
    // The host could not download a bundle nobody serves: it says so, for exactly this assignment.
    for (const [i, r] of out.entries()) {
      expect(r).toMatchObject({ type: 'status', deploymentId: 'dep-fanout-1', generation: after.get(hosts[i].agent.hostId), state: 'failed', code: 'NETWORK_ERROR' });
    }
    const rows = await server.ctx.db.query<{ host_id: string }>('SELECT host_id FROM host_bundles WHERE bundle_digest = ?', [DIGEST]);
    expect(new Set(rows.map((r) => r.host_id))).toEqual(new Set(hosts.map((h) => h.agent.hostId)));
  });

  it('gives a host assigned twice in one turn two generations in order, and both reach it in order', async () => {
    const before = await generations();
    const [h0, h1] = hosts;
    const out = await Promise.all([
      hub.assign(h0.agent.hostId, base('dep-twice-a'), 10_000),
      hub.assign(h1.agent.hostId, base('dep-once'), 10_000),
      hub.assign(h0.agent.hostId, base('dep-twice-b'), 10_000),
    ]);
    const g0 = before.get(h0.agent.hostId)!;
    expect(out.map((r) => (r.type === 'status' ? [r.deploymentId, r.generation, r.code] : r.type))).toEqual([
      ['dep-twice-a', g0 + 1, 'NETWORK_ERROR'],
      ['dep-once', before.get(h1.agent.hostId)! + 1, 'NETWORK_ERROR'],
      // Not refused as stale: the second one's generation is above the first's.
      ['dep-twice-b', g0 + 2, 'NETWORK_ERROR'],
    ]);
    expect((await generations()).get(h0.agent.hostId)).toBe(g0 + 2);
  });

  it('fails only the host whose row went away in the middle of a fan-out', async () => {
    const gone = hosts[HOSTS - 1];
    const [row] = await server.ctx.db.query<Record<string, unknown>>('SELECT * FROM hosts WHERE id = ?', [gone.agent.hostId]);
    const [gen] = await server.ctx.db.query<Record<string, unknown>>('SELECT * FROM host_generations WHERE host_id = ?', [gone.agent.hostId]);
    await server.ctx.db.run('DELETE FROM host_bundles WHERE host_id = ?', [gone.agent.hostId]);
    await server.ctx.db.run('DELETE FROM hosts WHERE id = ?', [gone.agent.hostId]);
    try {
      const a = base('dep-gone');
      const out = await Promise.allSettled(hosts.map((h) => hub.assign(h.agent.hostId, a, 10_000)));
      expect(out.slice(0, -1).every((r) => r.status === 'fulfilled' && r.value.type === 'status')).toBe(true);
      // A host whose row is gone (removed) is offline for this deploy; the others are not held back.
      expect(out[HOSTS - 1]).toEqual({ status: 'fulfilled', value: { type: 'offline' } });
    } finally {
      const cols = Object.keys(row);
      await server.ctx.db.run(`INSERT INTO hosts (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, cols.map((c) => row[c]));
      // Its generation went with its row (the foreign key): put back as well, or its agent refuses the next as stale.
      expect(await server.ctx.db.query('SELECT * FROM host_generations WHERE host_id = ?', [gone.agent.hostId])).toEqual([]);
      await server.ctx.db.run('INSERT INTO host_generations (host_id, generation) VALUES (?, ?)', [gen.host_id, gen.generation]);
    }
  });

  it('writes an inventory when it changes, not again when it is the same, and again after a reconnect', async () => {
    const h = hosts[0];
    const containers = async () => (await server.ctx.db.query<{ containers: string }>('SELECT containers FROM hosts WHERE id = ?', [h.agent.hostId]))[0].containers;
    const item: InventoryItem = { id: 'ct-production-web-0123456789', app: 'web', imageDigest: `sha256:${'c'.repeat(64)}`, state: 'running' };
    h.inventory = [item];
    await h.agent.resync();
    await until('inventory written', async () => (await containers()) === JSON.stringify([item]));
    // Every host's at once: written together, each its own.
    for (const [i, o] of hosts.entries()) o.inventory = [{ ...item, id: `c-${i}` }];
    await Promise.all(hosts.map((o) => o.agent.resync()));
    await until('every inventory written', async () => {
      const rows = await server.ctx.db.query<{ id: string; containers: string }>('SELECT id, containers FROM hosts');
      return hosts.every((o, i) => rows.find((r) => r.id === o.agent.hostId)?.containers === JSON.stringify([{ ...item, id: `c-${i}` }]));
    });
    // The same inventory again is not written: a change made behind the hub's back stays…
    await server.ctx.db.run(`UPDATE hosts SET containers = '["marker"]' WHERE id = ?`, [h.agent.hostId]);
    await h.agent.resync();
    // …while a malformed one is ignored and a later changed one is written (messages keep their order).
    h.inventory = [{ ...item, state: 'exploded' as never }];
    await h.agent.resync();
    h.inventory = [{ ...item, id: 'c-changed' }];
    await h.agent.resync();
    await until('changed inventory written', async () => (await containers()).includes('c-changed'));
    await server.ctx.db.run(`UPDATE hosts SET containers = '["marker"]' WHERE id = ?`, [h.agent.hostId]);
    await h.agent.resync();
    await new Promise((r) => setTimeout(r, 200));
    expect(await containers()).toBe('["marker"]');
    // A new channel (the host may have been on another replica meanwhile) writes it again.
    await h.agent.stop();
    await until('host gone', () => !hub.connected(h.agent.hostId));
    const again = await startAgent({
      serverUrl: server.url, stateDir: join(dir, 'h0'), name: 'fan-0', facts: async () => FACTS, maxBackoffMs: 300,
      runner: { run: async () => ({ state: 'running' }) }, inventory: async () => h.inventory,
    });
    h.agent = again;
    await until('inventory written on the new channel', async () => (await containers()).includes('c-changed'));
  });
});
