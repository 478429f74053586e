/**
 * A host's status is taken as the protocol's fields, typed and bounded: an enrolled (perhaps
 * compromised) host names no other host in `host.status`, and writes no megabyte message nor
 * arbitrary reason into the deployment its status answers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Assignment, HostMessage } from '../../../src/protocol/messages.js';
import { channelServer, until, type ChannelServer } from './support.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER_HOST = '00000000-0000-4000-8000-0000000000ff';
const assignment = (deploymentId: string): Omit<Assignment, 'generation'> => ({
  deploymentId, environment: 'production', app: 'web', bundle: `registry.example/web@${DIGEST}`, bundleDigest: DIGEST, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${DIGEST}`,
});

describe('a host status from a hostile host', () => {
  let server: ChannelServer;
  beforeAll(async () => void (server = await channelServer()), 60_000);
  afterAll(async () => server?.close());

  it('is published under the authenticated host id, bounded, and a malformed one is dropped', async () => {
    const huge = 'm'.repeat(900_000);
    // The runner answers with what a compromised host would put in its status.
    const stateDir = server.stateDir();
    mkdirSync(join(stateDir, 'bundles'), { recursive: true });
    writeFileSync(join(stateDir, 'bundles', `${DIGEST.slice(7)}.ctp`), 'bundle');
    const agent = await server.agent(server.url, {
      stateDir,
      runner: { run: async () => ({ state: 'failed', code: 'NOT A CODE\nforged: yes', message: huge, hostId: OTHER_HOST } as never) },
    });
    await until('connected', () => Boolean(server.hub.connected(server.hostId)));
    const published: { type: string; data: Record<string, unknown> }[] = [];
    const listen = (e: { type: string; data: Record<string, unknown> }) => void (e.type === 'host.status' && published.push(e));
    server.ctx.events.on('event', listen);
    try {
      const out = await server.hub.assign(server.hostId, assignment('dep-hostile'), 10_000);
      // What the deploy records as reason and message.
      expect(out).toMatchObject({ type: 'status', deploymentId: 'dep-hostile', state: 'failed', code: 'HOST_FAILED' });
      expect((out as { message: string }).message.length).toBeLessThanOrEqual(1000);
      expect(out).not.toHaveProperty('hostId');
      // A status naming another host and an unknown state: the first is published as this host's, the second not at all.
      agent.report({ type: 'status', deploymentId: 'dep-forged', generation: 1, state: 'running', hostId: OTHER_HOST } as unknown as Extract<HostMessage, { type: 'status' }>);
      agent.report({ type: 'status', deploymentId: 'dep-junk', generation: 1, state: 'pwned', message: huge } as unknown as Extract<HostMessage, { type: 'status' }>);
      await until('the forged status published', () => published.some((e) => e.data.deploymentId === 'dep-forged'));
      await new Promise((r) => setTimeout(r, 200));
      for (const e of published) {
        expect(e.data.hostId).toBe(server.hostId);
        expect(JSON.stringify(e.data).length).toBeLessThan(2000);
      }
      expect(published.some((e) => e.data.deploymentId === 'dep-junk')).toBe(false);
    } finally {
      server.ctx.events.off('event', listen);
      await agent.stop();
    }
  });
});
