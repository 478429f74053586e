/**
 * The notes a deployment's message carries from its hosts (server/deploy/pipeline.ts): each distinct
 * text once, in the hosts' order, blank ones dropped without taking a place, three at most. Guards
 * the loop that replaced the flatMap/Set/filter/slice chain (round nine of #14 target 8).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { DeployPipeline, type DeploySteps, type VerifiedBundle } from '../../server/deploy/pipeline.js';
import type { Job } from '../../server/queue/queue.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import { input } from '../policy/helpers.js';
import { FACTS } from './channel/support.js';
import { testServer } from './support.js';

const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];

describe("a deployment's notes from its hosts", () => {
  let srv: Awaited<ReturnType<typeof testServer>>;
  beforeAll(async () => {
    srv = await testServer();
    for (const h of HOSTS) {
      await srv.ctx.db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [h, h, 'key', JSON.stringify({ env: 'production' }), JSON.stringify(FACTS), Date.now()]);
    }
  });
  afterAll(async () => srv?.close());

  /** The message of a deployment to the six hosts, each answering running with what `said` gives it. */
  async function messageOf(said: Record<string, string>): Promise<{ status: string; message: string }> {
    const { evidence, manifest } = input();
    const bundle: Extract<VerifiedBundle, { ok: true }> = { ok: true, path: '/nonexistent', bundleDigest: `sha256:${'b'.repeat(64)}`, imageDigest: evidence.imageDigest, evidence, manifest: { evidence, manifest, integrity: [] } };
    const steps: DeploySteps = {
      fetchAndVerify: async () => bundle,
      decide: async () => ({ allow: true, warnings: [] }),
      dispatch: async (hostId) => ({ state: 'running', message: said[hostId] }),
      hostFacts: () => FACTS as HostFacts,
    };
    const pipeline = new DeployPipeline(srv.ctx, steps, {}, { provider: 'none', repository: 'acme/desired' });
    const { id } = await pipeline.create(randomBytes(20).toString('hex'), 'production', `app-${randomBytes(4).toString('hex')}`, 'registry.example/app@sha256:' + 'a'.repeat(64), {});
    const job: Job = { id: `job-${id}`, kind: 'deploy', dedupeKey: `deploy:${id}`, payload: { deploymentId: id }, attempts: 1, maxAttempts: 3 };
    await pipeline.handle(job);
    const [row] = await srv.ctx.db.query<{ status: string; message: string }>('SELECT status, message FROM deployments WHERE id = ?', [id]);
    return row;
  }

  it('each distinct text once, in host order, blank ones taking no place, three at most', async () => {
    // h1 says only blanks (a note of nothing), h2 and h3 the same text, h6's fourth text is past the limit.
    const said: Record<string, string> = { h1: ' \t\n ', h2: 'note a', h3: 'note a', h4: 'note b', h5: 'note c', h6: 'note d' };
    expect(await messageOf(said)).toEqual({ status: 'succeeded', message: 'running on 6 host(s); note a; note b; note c' });
  });

  it("a host's notes joined by '; ' are each bounded on their own: a long first note does not cut the second away", async () => {
    // The agent joins its publish-address note and its DNS note (host/agent/runner.ts): together they can pass 200 characters.
    const address = `published on 10.9.8.7, an address this host does not have yet ${'x'.repeat(180)}`;
    const dns = 'no DNS name: the app is on a bridge without aardvark-dns';
    const said: Record<string, string> = Object.fromEntries(HOSTS.map((h) => [h, `${address}; ${dns}`]));
    const { message } = await messageOf(said);
    expect(message.split('; ')).toEqual(['running on 6 host(s)', `${address.slice(0, 199)}…`, dns]);
  });

  it("one host's notes take at most two places, blank and repeated parts none: another host's note is kept", async () => {
    const none = { h3: '', h4: '', h5: '', h6: '' };
    expect((await messageOf({ h1: 'p; q; r', h2: 'no DNS name: h2', ...none })).message).toBe('running on 6 host(s); p; q; no DNS name: h2');
    expect((await messageOf({ h1: ' ;  ;  ; the DNS note', h2: '', ...none })).message).toBe('running on 6 host(s); the DNS note');
    expect((await messageOf({ h1: 'a; a; a; b', h2: '', ...none })).message).toBe('running on 6 host(s); a; b');
  });
});
