/**
 * Issue 6 acceptance, the whole loop on one machine: a commit to a local desired-state repository
 * → signed webhook → the server fetches the bundle from a real local registry → verifies it →
 * policy allows → dispatches it over the signed channel to a host agent → the host verifies again
 * and runs it under runc → host status → commit status and deployment status recorded by the
 * local GitHub API stand-in. A second commit naming a tampered bundle ends in a failure status
 * that names the code, and nothing of it reaches runc.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RunningServer } from '../../server/start.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { loopFixture, startLoopServer, startTestHost, until, type LoopFixture, type TestHost } from './fixture.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

/** Reads a streamed response until its text matches (or the time is up); the text read. */
async function readUntil(res: Response, re: RegExp, ms = 10_000): Promise<string> {
  const reader = res.body!.getReader();
  let text = '';
  try {
    return await until(`${re}`, async () => {
      const { value, done } = await reader.read();
      text += new TextDecoder().decode(value);
      if (done && !re.test(text)) throw new Error(`stream ended without ${re}: ${text.slice(-500)}`);
      return re.test(text) && text;
    }, ms);
  } finally {
    reader.releaseLock();
  }
}

describe('deploy loop: commit → webhook → registry → verify → host → statuses', () => {
  let fx: LoopFixture;
  let server: RunningServer;
  let host: TestHost;

  beforeAll(async () => {
    fx = await loopFixture();
    server = await startLoopServer(fx, {
      // Small bounds so that the follow test reaches them: 2 per principal, 3 per host, 3 s each.
      logFollow: { perPrincipal: 2, perHost: 3, maxSeconds: 3, pollMs: 200 },
    });
    host = await startTestHost(server.url, (await createApiKey(server.ctx.db, 'admin', 'admin')).key, fx);
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await server?.close();
    await fx?.cleanup();
  });

  it('deploys a signed bundle end to end and reports success to GitHub', async () => {
    // Watch the server-sent events while it happens.
    const viewer = (await createApiKey(server.ctx.db, 'sse', 'viewer')).key;
    const abort = new AbortController();
    const events = await fetch(`${server.url}/api/v1/events`, { headers: { authorization: `Bearer ${viewer}` }, signal: abort.signal });
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    let streamed = '';
    void (async () => {
      try {
        for await (const chunk of events.body as unknown as AsyncIterable<Uint8Array>) streamed += Buffer.from(chunk).toString('utf8');
      } catch {
        // aborted at the end of the test
      }
    })();
    const sha = fx.commit({ hello: await fx.refs.good() }, 'deploy hello');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const [status] = await until('final status', () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha));
    expect(`${status.body.state} ${status.body.description}`).toMatch(/^success /);
    expect(status.body).toMatchObject({ context: 'cerro-torre/deploy/production' });
    expect(status.body.description.length).toBeLessThanOrEqual(140);
    expect(fx.github.errors).toEqual([]);
    const deployments = fx.github.requests.filter((r) => r.operationId === 'repos/create-deployment' && r.body.ref === sha);
    expect(deployments).toHaveLength(1);
    expect(deployments[0].body).toMatchObject({ environment: 'production', ref: sha });
    // The deployment status follows the commit status.
    await until('deployment status success', () => fx.github.requests.some((r) => r.operationId === 'repos/create-deployment-status' && r.body.state === 'success'));
    // The container really runs on the host.
    expect((await host.runtime.list()).find((c) => c.id === containerIdFor('production', 'hello'))?.status).toBe('running');
    await until('succeeded event', () => /event: deployment\ndata: \{[^\n]*"status":"succeeded"/.test(streamed));
    abort.abort();
  }, 120_000);

  it('serves the container\'s log from the host, to operators only', async () => {
    const admin = (await createApiKey(server.ctx.db, 'logs-admin', 'admin')).key;
    const viewer = (await createApiKey(server.ctx.db, 'logs-viewer', 'viewer')).key;
    const hostId = host.agent.hostId;
    const get = (q: string, key = admin) => fetch(`${server.url}/api/v1/hosts/${hostId}/logs?${q}`, { headers: { authorization: `Bearer ${key}` } });
    const logs = await until('log line', async () => {
      const body = (await (await get(`container=${containerIdFor('production', 'hello')}`)).json()) as { text?: string };
      return body.text?.includes('hello from the container') && body;
    }, 20_000);
    expect(logs.text).toContain('hello from the container');
    expect((await get(`container=${containerIdFor('production', 'nope')}`)).status).toBe(404);
    expect((await get('container=../../etc')).status).toBe(400);
    expect((await get(`container=${containerIdFor('production', 'hello')}`, viewer)).status).toBe(403);
    // Lines with their stream and time, and a cursor; follow mode as server-sent events.
    expect((logs as { lines?: { stream: string; text: string }[] }).lines).toContainEqual(expect.objectContaining({ stream: 'stdout', text: expect.stringContaining('hello from the container') }));
    const abort = new AbortController();
    const res = await fetch(`${server.url}/api/v1/hosts/${hostId}/logs?container=${containerIdFor('production', 'hello')}&follow=1`, { headers: { authorization: `Bearer ${admin}` }, signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    let streamed = '';
    const reader = res.body!.getReader();
    await until('a followed log event', async () => {
      const { value } = await reader.read();
      streamed += new TextDecoder().decode(value);
      return /event: log\n(id: [0-9a-f+.]+\n)?data: \{"stream":"stdout","time":"\d{4}-[^"]+Z","text":"[^"]*hello from the container/.test(streamed);
    }, 20_000);
    abort.abort();
    expect((await get(`container=${containerIdFor('production', 'nope')}&follow=1`)).status).toBe(404);
  }, 60_000);

  it('bounds log follows per principal, per host and in time, and stops asking the host when the client goes', async () => {
    const keys = await Promise.all(['f1', 'f2', 'f3'].map(async (n) => (await createApiKey(server.ctx.db, `follow-${n}`, 'operator')).key));
    const url = `${server.url}/api/v1/hosts/${host.agent.hostId}/logs?container=${containerIdFor('production', 'hello')}&follow=1`;
    // What the host is asked: every poll of an open follow is one channel `logs` request.
    let asked = 0;
    const logLines = host.runner.logLines.bind(host.runner);
    host.runner.logLines = (c, o) => (asked++, logLines(c, o));
    const open = async (key: string) => {
      const abort = new AbortController();
      const res = await fetch(url, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
      return { res, abort, text: res.status === 200 ? await readUntil(res, /: following/) : '' };
    };
    try {
      const a = await open(keys[0]);
      const b = await open(keys[0]);
      expect([a.res.status, b.res.status]).toEqual([200, 200]);
      const third = await open(keys[0]);
      expect(third.res.status).toBe(429);
      expect(((await third.res.json()) as { error: { code: string } }).error.code).toBe('LOG_FOLLOW_LIMIT');
      expect(Number(third.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(third.res.headers.get('retry-after'))).toBeLessThanOrEqual(3);
      // Another principal may still follow, up to the host's cap (3).
      const c = await open(keys[1]);
      expect(c.res.status).toBe(200);
      const d = await open(keys[2]);
      expect([d.res.status, ((await d.res.json()) as { error: { code: string } }).error.code]).toEqual([429, 'LOG_FOLLOW_LIMIT']);
      // Closing the sockets stops the polling: the host is asked nothing more.
      for (const f of [a, b, c]) f.abort.abort();
      await new Promise((r) => setTimeout(r, 600));
      const after = asked;
      await new Promise((r) => setTimeout(r, 1200));
      expect(asked).toBe(after);
      // A follow polls while open (the counter above counts), and ends at its maximum duration.
      const e = await open(keys[0]);
      expect(e.res.status).toBe(200);
      const ended = await readUntil(e.res, /event: end\ndata: [^\n]*MAX_DURATION/, 10_000);
      expect(asked).toBeGreaterThan(after + 3);
      expect(ended).toMatch(/"resume":"[0-9a-f+.]+"/);
    } finally {
      host.runner.logLines = logLines;
    }
  }, 60_000);

  it('answers /api/v1/verify for a reference and in Svalinn\'s {digest, policy} shape', async () => {
    const key = (await createApiKey(server.ctx.db, 'verifier', 'viewer')).key;
    const verify = async (body: unknown) => {
      const res = await fetch(`${server.url}/api/v1/verify`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { decision: string; code: string | null; imageDigest?: string } };
    };
    const store = join(server.ctx.config.dataDir, 'bundles');
    const held = readdirSync(store).sort();
    const tampered = await verify({ reference: fx.refs.tampered, environment: 'production' });
    expect(tampered.status).toBe(200);
    expect(tampered.body.decision).toBe('REJECT');
    expect(tampered.body.code).toMatch(/DIGEST_MISMATCH|UNCOVERED_FILE/);
    // Anyone who may ask names the bundle: a rejected one is not kept (it was, for ever).
    expect(readdirSync(store).sort()).toEqual(held);
    const good = await fx.refs.good();
    const imageDigest = good.split('@')[1];
    // Svalinn's shape names the image: the server answers for the bundle it deployed.
    const byDigest = await verify({ digest: imageDigest, environment: 'production' });
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.imageDigest).toBe(imageDigest);
    // Without a target host, runtime rules that need one fail closed.
    expect(byDigest.body).toMatchObject({ decision: 'REJECT', code: 'HOST_SECCOMP_UNAVAILABLE' });
    expect((await verify({ digest: `sha256:${'9'.repeat(64)}` })).status).toBe(404);
    expect((await verify({ reference: good, policy: 'no-such-policy', environment: 'production' })).body).toMatchObject({ decision: 'REJECT', code: 'NO_POLICY' });
    expect((await verify({ reference: 'not a reference' })).status).toBe(400);
  }, 60_000);

  it('shows drift when a host stops running what is desired', async () => {
    const viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    const drift = async () => (await (await fetch(`${server.url}/api/v1/drift`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { inSync: boolean; drift: { app: string; reason: string }[] };
    await until('in sync', async () => (await drift()).inSync);
    await host.runtime.stop(containerIdFor('production', 'hello'), 500);
    await host.agent.resync();
    const d = await until('drift reported', async () => { const x = await drift(); return !x.inSync && x; }, 40_000);
    expect(d.drift).toEqual([expect.objectContaining({ app: 'hello', reason: 'NOT_RUNNING' })]);
  }, 60_000);

  it('refuses a bundle other than the one the desired state pins', async () => {
    const sha = fx.commit({ pinned: { bundle: await fx.refs.good('acme/pinned'), bundleDigest: `sha256:${'0'.repeat(64)}` } }, 'pin another bundle');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const [status] = await until('final status', () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha));
    expect(status.body.state).toBe('failure');
    expect(status.body.description).toMatch(/pinned: denied \((REGISTRY_NOT_FOUND|DIGEST_MISMATCH)\)/);
    expect((await host.runtime.list()).some((c) => c.id.includes('pinned'))).toBe(false);
  }, 120_000);

  it('ends a commit naming a tampered bundle in a failure status with the code, and never runs it', async () => {
    const before = (await host.runtime.list()).map((c) => `${c.id}:${c.imageDigest}:${c.status}`);
    const sha = fx.commit({ hello: fx.refs.tampered }, 'deploy tampered');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const [status] = await until('final status', () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha));
    expect(status.body.state).toBe('failure');
    expect(status.body.description).toMatch(/DIGEST_MISMATCH|UNCOVERED_FILE/);
    expect(fx.github.errors).toEqual([]);
    expect((await host.runtime.list()).map((c) => `${c.id}:${c.imageDigest}:${c.status}`)).toEqual(before);
  }, 120_000);
});
