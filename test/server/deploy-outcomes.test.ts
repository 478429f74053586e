/**
 * What a deployment becomes from what its hosts answer (server/deploy/pipeline.ts): the real
 * pipeline, database and queue, with the steps before dispatch answering at once and each host's
 * answer given. A host's refusals that are not about the bundle are not final failures: SUPERSEDED
 * (a newer deployment overtook this one on a host that held the app) ends it `superseded`;
 * CONTAINER_BUSY (the agent stopping, the app held by a replace it is ending) is retried, and so is
 * the server's GENERATION_BUSY (an assignment it could not number in time: nothing was sent).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { DeployPipeline, type DeploySteps, type VerifiedBundle } from '../../server/deploy/pipeline.js';
import type { Job } from '../../server/queue/queue.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import { input } from '../policy/helpers.js';
import { FACTS } from './channel/support.js';
import { testServer } from './support.js';

type Answer = { state: string; code?: string; message?: string };

describe('deployment outcomes from host answers', () => {
  let srv: Awaited<ReturnType<typeof testServer>>;
  const answers = new Map<string, Answer>();
  /** Hosts whose row is deleted while the deploy waits for them (a DELETE /api/v1/hosts/{id} meanwhile). */
  const removing = new Set<string>();
  const enrol = (h: string) => srv.ctx.db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [h, h, 'key', JSON.stringify({ env: 'production' }), JSON.stringify(FACTS), Date.now()]);
  beforeAll(async () => {
    srv = await testServer();
    for (const h of ['h1', 'h2']) await enrol(h);
  });
  afterAll(async () => srv?.close());

  const { evidence, manifest } = input();
  const bundle: Extract<VerifiedBundle, { ok: true }> = { ok: true, path: '/nonexistent', bundleDigest: `sha256:${'b'.repeat(64)}`, imageDigest: evidence.imageDigest, evidence, manifest: { evidence, manifest, integrity: [] } };
  const steps: DeploySteps = {
    fetchAndVerify: async () => bundle,
    decide: async () => ({ allow: true, warnings: [] }),
    dispatch: async (hostId) => {
      if (removing.has(hostId)) await srv.ctx.db.run('DELETE FROM hosts WHERE id = ?', [hostId]);
      return answers.get(hostId) ?? { state: 'running' };
    },
    hostFacts: () => FACTS as HostFacts,
  };

  /** One deploy of a fresh app, its job handled once (attempt `attempt` of 3); the outcome and the row. */
  async function deployOnce(h1: Answer, attempt = 1, h2: Answer = { state: 'running' }) {
    answers.set('h1', h1);
    answers.set('h2', h2);
    const pipeline = new DeployPipeline(srv.ctx, steps, {}, { provider: 'none', repository: 'acme/desired' });
    const app = `app-${randomBytes(4).toString('hex')}`;
    const { id } = await pipeline.create(randomBytes(20).toString('hex'), 'production', app, 'registry.example/app@sha256:' + 'a'.repeat(64), {});
    const job: Job = { id: `job-${id}`, kind: 'deploy', dedupeKey: `deploy:${id}`, payload: { deploymentId: id }, attempts: attempt, maxAttempts: 3 };
    const outcome = await pipeline.handle(job);
    const [row] = await srv.ctx.db.query<{ status: string; reason: string | null; message: string | null }>('SELECT status, reason, message FROM deployments WHERE id = ?', [id]);
    return { outcome, row };
  }

  it('every host running: succeeded', async () => {
    const { outcome, row } = await deployOnce({ state: 'running' });
    expect(outcome).toMatchObject({ state: 'done' });
    expect(row).toMatchObject({ status: 'succeeded', message: 'running on 2 host(s)' });
  });

  it('every host running, with what they said besides: succeeded, their notes in its message once each', async () => {
    const note = 'app "api.v2" has no DNS name in its environment';
    const { row } = await deployOnce({ state: 'running', message: note }, 1, { state: 'running', message: note });
    expect(row).toMatchObject({ status: 'succeeded', message: `running on 2 host(s); ${note}` });
  });

  it("a host's note in the message: one line, its control characters escaped, at most 200 characters", async () => {
    // ESC sequences (a terminal title, a hidden text), CR rewriting the line, a newline forging another status line.
    const hostile = `app \u001b]0;owned\u0007"x" has\r no\nDNS name ${'z'.repeat(1000)}`;
    const { row } = await deployOnce({ state: 'running', message: hostile }, 1, { state: 'running', message: '\u009b31m' });
    const [head, ...notes] = row.message!.split('; ');
    expect(head).toBe('running on 2 host(s)');
    expect(notes[0].startsWith('app \\u001b]0;owned\\u0007"x" has\\u000d no DNS name zzz')).toBe(true);
    expect(notes[0].endsWith('z…')).toBe(true);
    expect(notes[1]).toBe('\\u009b31m');
    expect(notes.map((n) => [...n].length)).toEqual([200, 9]);
    // eslint-disable-next-line no-control-regex
    expect(row.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('a host answering refused SUPERSEDED: the deployment is superseded, not failed', async () => {
    const { outcome, row } = await deployOnce({ state: 'refused', code: 'SUPERSEDED', message: 'generation 7 arrived while the app was held' });
    expect(outcome).toMatchObject({ state: 'done' });
    expect(row).toEqual({ status: 'superseded', reason: 'SUPERSEDED', message: 'generation 7 arrived while the app was held' });
  });

  it('a host answering refused CONTAINER_BUSY: tried again (queued), and an error only once the attempts are spent', async () => {
    const busy = { state: 'refused', code: 'CONTAINER_BUSY', message: 'the agent is stopping' };
    const first = await deployOnce(busy);
    expect(first.outcome).toMatchObject({ state: 'retry', error: 'CONTAINER_BUSY: a host was busy: the agent is stopping' });
    expect(first.row).toEqual({ status: 'queued', reason: 'CONTAINER_BUSY', message: 'a host was busy: the agent is stopping' });
    const last = await deployOnce(busy, 3);
    expect(last.outcome).toMatchObject({ state: 'done' });
    expect(last.row).toMatchObject({ status: 'error', reason: 'CONTAINER_BUSY' });
  });

  it("a host's assignment the server could not number in time (GENERATION_BUSY): tried again, an error only once the attempts are spent", async () => {
    const busy = { state: 'refused', code: 'GENERATION_BUSY', message: 'locked' };
    const first = await deployOnce(busy);
    expect(first.outcome).toMatchObject({ state: 'retry' });
    expect(first.row).toMatchObject({ status: 'queued', reason: 'GENERATION_BUSY' });
    const last = await deployOnce(busy, 3);
    expect(last.outcome).toMatchObject({ state: 'done' });
    expect(last.row).toMatchObject({ status: 'error', reason: 'GENERATION_BUSY' });
  });

  it('a host refusing for the bundle (policy on the host): failed, with the host code', async () => {
    const { outcome, row } = await deployOnce({ state: 'refused', code: 'POLICY_VIOLATION', message: 'prod/no-root: runs as root' });
    expect(outcome).toMatchObject({ state: 'done' });
    expect(row).toEqual({ status: 'failed', reason: 'POLICY_VIOLATION', message: 'prod/no-root: runs as root' });
  });

  it('a final failure on one host decides over another host that was busy or overtaken: failed, not retried', async () => {
    const failed = { state: 'failed', code: 'HEALTHCHECK_FAILED', message: 'unhealthy; rolled back' };
    for (const other of [{ state: 'refused', code: 'CONTAINER_BUSY', message: 'busy' }, { state: 'timeout' }, { state: 'refused', code: 'SUPERSEDED', message: 'newer' }]) {
      // h1 sorts first: the busy or overtaken answer comes before the failure.
      const { outcome, row } = await deployOnce(other, 1, failed);
      expect([other.state, other.code, outcome.state]).toEqual([other.state, other.code, 'done']);
      expect(row).toEqual({ status: 'failed', reason: 'HEALTHCHECK_FAILED', message: 'unhealthy; rolled back' });
    }
    // Overtaken on one host, busy on the other: superseded (a newer deployment is there anyway).
    const { row } = await deployOnce({ state: 'refused', code: 'CONTAINER_BUSY', message: 'busy' }, 1, { state: 'refused', code: 'SUPERSEDED', message: 'newer' });
    expect(row).toMatchObject({ status: 'superseded', reason: 'SUPERSEDED' });
  });

  describe('a host removed while the deploy waits for it (HOST_REMOVED)', () => {
    const removedAnswer = { state: 'failed', code: 'HOST_REMOVED', message: 'the host was removed from the server' };
    afterEach(async () => {
      // Enrolled again for the tests after: the row each of them deploys to.
      for (const h of removing) await enrol(h);
      removing.clear();
    });

    it('every remaining host running: succeeded at once, on the hosts that remain', async () => {
      removing.add('h1');
      const { outcome, row } = await deployOnce(removedAnswer);
      expect(outcome).toMatchObject({ state: 'done' });
      expect(row).toMatchObject({ status: 'succeeded', message: 'running on 1 host(s)' });
    });

    it('a remaining host failing still fails the deployment, with its code', async () => {
      removing.add('h1');
      const { row } = await deployOnce(removedAnswer, 1, { state: 'failed', code: 'HEALTHCHECK_FAILED', message: 'unhealthy' });
      expect(row).toEqual({ status: 'failed', reason: 'HEALTHCHECK_FAILED', message: 'unhealthy' });
    });

    it('every host removed: NO_HOST, tried again like a deploy that matches no host', async () => {
      removing.add('h1');
      removing.add('h2');
      const { outcome, row } = await deployOnce(removedAnswer, 1, removedAnswer);
      expect(outcome).toMatchObject({ state: 'retry' });
      expect(row).toMatchObject({ status: 'queued', reason: 'NO_HOST' });
    });

    it("a host's own HOST_REMOVED, its row still there, is its failure: not taken as a removal", async () => {
      const { row } = await deployOnce(removedAnswer);
      expect(row).toMatchObject({ status: 'failed', reason: 'HOST_REMOVED' });
    });
  });
});
