/**
 * An authenticated host that floods statuses (compromised or broken): what reaches event
 * subscribers (`host.status`) is bounded by the host's budget (config hostChannel.statusBurst,
 * statusPerSecond; server/channel/status-budget.ts), the flood merged into each deployment's
 * latest status, which is always published; a deploy waiting for the host is not held back.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MAX_HELD_STATUSES } from '../../../server/channel/status-budget.js';
import type { Assignment, HostMessage } from '../../../src/protocol/messages.js';
import { channelServer, rawHost, until, type ChannelServer } from './support.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const BURST = 5;
const PER_SECOND = 100;

type Published = { deploymentId: string; generation: number; state: string; hostId: string; at: number };

describe('a host that floods statuses', () => {
  let server: ChannelServer;
  const published: Published[] = [];
  const onEvent = (e: { type: string; data: unknown }) => {
    if (e.type === 'host.status') published.push({ ...(e.data as Omit<Published, 'at'>), at: Date.now() });
  };

  /** The enrolled host by hand: its real handshake, then whatever the test sends. */
  async function host(onAssign?: (a: Assignment, send: (m: HostMessage) => void) => void) {
    let welcomed = false;
    const { ws, hostId, send } = await rawHost(server, (m, reply) => {
      if (m.type === 'welcome') welcomed = true;
      if (m.type === 'assign') onAssign?.(m.assignment, reply);
    });
    await until('welcomed', () => welcomed);
    return {
      send,
      async close() {
        ws.close();
        await until('host gone', () => !server.hub.connected(hostId));
      },
    };
  }

  beforeAll(async () => {
    server = await channelServer({ hostChannel: { statusBurst: BURST, statusPerSecond: PER_SECOND } });
    server.ctx.events.on('event', onEvent);
  }, 60_000);
  afterAll(async () => {
    server.ctx.events.off('event', onEvent);
    await server.close();
  });

  it('publishes at most its budget, and the last state of every deployment it named', async () => {
    published.length = 0;
    const h = await host();
    const start = Date.now();
    // 2,000 statuses of 4 deployments, as fast as the channel carries them; each ends `running`.
    const N = 2000;
    for (let i = 0; i < N; i++) h.send({ type: 'status', deploymentId: `flood-${i % 4}`, generation: i, state: i >= N - 4 ? 'running' : 'created', message: 'x'.repeat(500) });
    const last = (d: string) => published.filter((p) => p.deploymentId === d).at(-1);
    await until('each deployment\'s last status published', () => [0, 1, 2, 3].every((k) => last(`flood-${k}`)?.generation === N - 4 + k), 20_000);
    const elapsed = Date.now() - start;
    // A token bucket: the burst, then PER_SECOND a second (+2 for timer rounding). Before: all 2,000.
    expect(published.length).toBeLessThanOrEqual(BURST + Math.ceil((PER_SECOND * elapsed) / 1000) + 2);
    for (let k = 0; k < 4; k++) expect(last(`flood-${k}`)).toMatchObject({ state: 'running', hostId: server.hostId });
    // Published in the order sent, per deployment: an older one never after a newer one.
    for (let k = 0; k < 4; k++) {
      const gens = published.filter((p) => p.deploymentId === `flood-${k}`).map((p) => p.generation);
      expect(gens).toEqual([...gens].sort((a, b) => a - b));
    }
    await h.close();
  });

  it('holds the latest of each deployment while the budget comes back, and answers a waiting deploy at once', async () => {
    // The budget spent above comes back within a second.
    await new Promise((r) => setTimeout(r, 1000));
    published.length = 0;
    let answeredAt = 0;
    const h = await host((a, send) => {
      // A flood of distinct deployments, then the answer to the assignment.
      for (let i = 0; i < 300; i++) send({ type: 'status', deploymentId: `other-${i}`, generation: 1, state: 'created' });
      send({ type: 'status', deploymentId: a.deploymentId, generation: a.generation, state: 'running' });
    });
    const out = await server.hub.assign(server.hostId, {
      deploymentId: 'dep-waited', environment: 'production', app: 'web', bundle: `registry.example/web@${DIGEST}`, bundleDigest: DIGEST, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${DIGEST}`,
    }, 10_000);
    answeredAt = Date.now();
    expect(out).toMatchObject({ type: 'status', deploymentId: 'dep-waited', state: 'running' });
    await until('the answer published too', () => published.some((p) => p.deploymentId === 'dep-waited'), 10_000);
    // The deploy had its answer before subscribers did: only publishing waits for the budget.
    expect(answeredAt).toBeLessThan(published.find((p) => p.deploymentId === 'dep-waited')!.at);
    // Fewer than MAX_HELD_STATUSES deployments: none pushed out, each published once, in order,
    // the answer last (bounds past MAX_HELD_STATUSES: status-budget.test.ts).
    expect(300).toBeLessThan(MAX_HELD_STATUSES);
    await new Promise((r) => setTimeout(r, 300));
    expect(published.at(-1)).toMatchObject({ deploymentId: 'dep-waited', state: 'running' });
    expect(published.map((p) => p.deploymentId).filter((d) => d.startsWith('other-'))).toEqual(Array.from({ length: 300 }, (_, i) => `other-${i}`));
    await h.close();
  });
});
