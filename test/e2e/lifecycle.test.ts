/**
 * Issue 11 acceptance, through the deploy server and a real host agent under runc:
 * - a bundle whose health check fails is rolled back on the host: the old version answers again,
 *   the commit status is `failure` with HEALTHCHECK_FAILED;
 * - stop/start/restart/pause/resume/kill through the API change the runc state accordingly, each
 *   request audited; viewers may not act; a bad action is refused before it reaches a host;
 * - desired state `suspended: true` stops the app on its host (not removed), reported `suspended`
 *   in the deployment, drift, overview and inventory; neither the restart policy nor a restarted
 *   agent starts it; dropping the flag starts it again;
 * - `ct host stop` on the host goes through the running agent: refused with CONTAINER_BUSY while a
 *   deploy replaces the container (runc untouched, the deploy succeeds), done in its turn otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import type { RunningServer } from '../../server/start.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { PolicyStore } from '../../src/policy/store.js';
import { collectFacts } from '../../host/facts.js';
import { runCt } from '../support/cli.js';
import { loopFixture, startLoopServer, startTestHost, until, type LoopFixture, type TestHost } from './fixture.js';

/** An HTTP app: busybox httpd serving `version` on 8080, with an http health check of `path`. */
const webApp = (version: string, healthPath: string, restart?: string) => `name = "web"
version = "${version}"

[runtime]
user = "65534:65534"
read_only_rootfs = true
capabilities = []
network = "none"
command = ["/bin/busybox", "sh", "-c", "mkdir -p /tmp/www && echo ${version} > /tmp/www/index.html && echo ok > /tmp/www/healthz && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"]
stop_grace_period = 2
${restart ? `restart = "${restart}"\n` : ''}
[runtime.healthcheck]
type = "http"
port = 8080
path = "${healthPath}"
interval = 0.5
timeout = 1
retries = 3
start_period = 1
`;

const CONTAINER = containerIdFor('production', 'web');

describe('lifecycle and health-gated updates through the deploy server', () => {
  let fx: LoopFixture;
  let server: RunningServer;
  let host: TestHost;
  let operator: string;
  let deploymentId: string;

  /** runc's own view of the container: what the acceptance asks to change. */
  const runcState = (): string => {
    try {
      return (JSON.parse(execFileSync('runc', ['--root', host.runtime.root, 'state', CONTAINER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { status: string }).status;
    } catch {
      return 'absent';
    }
  };
  /** GET / of the app, from inside its own network namespace (network = "none"). */
  const page = async (): Promise<string> => {
    const rec = await host.runtime.state(CONTAINER);
    const script = "fetch('http://127.0.0.1:8080/').then((r) => r.text()).then((t) => process.stdout.write(t.trim()), () => process.stdout.write('unreachable'))";
    return execFileSync('nsenter', [`--target=${rec.pid}`, '--net', '--', process.execPath, '-e', script], { encoding: 'utf8' });
  };
  const act = (action: string, extra: Record<string, unknown> = {}, key = operator, path = `/api/v1/deployments/${deploymentId}/actions`) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ action, ...extra }) });

  beforeAll(async () => {
    fx = await loopFixture();
    server = await startLoopServer(fx);
    host = await startTestHost(server.url, (await createApiKey(server.ctx.db, 'admin', 'admin')).key, fx);
    operator = (await createApiKey(server.ctx.db, 'operator', 'operator')).key;
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await server?.close();
    await fx?.cleanup();
  });

  it('deploys a healthy app, then rolls back a bundle whose health check fails (HEALTHCHECK_FAILED)', async () => {
    const good = fx.commit({ web: await fx.signedApp('acme/web', webApp('v1', '/healthz')) }, 'web v1');
    expect(await fx.webhook(server.url, good)).toBe(202);
    const [ok] = await until('v1 final status', () => fx.finalStatuses(good)[0] && fx.finalStatuses(good));
    expect(`${ok.body.state} ${ok.body.description}`).toMatch(/^success /);
    expect(await page()).toBe('v1');
    expect((await host.runtime.state(CONTAINER)).health).toBe('healthy');

    // v2 serves no /missing: every check answers 404.
    const bad = fx.commit({ web: await fx.signedApp('acme/web-bad', webApp('v2', '/missing')) }, 'web v2, unhealthy');
    expect(await fx.webhook(server.url, bad)).toBe(202);
    const [failed] = await until('v2 final status', () => fx.finalStatuses(bad)[0] && fx.finalStatuses(bad), 90_000);
    expect(failed.body.state).toBe('failure');
    expect(failed.body.description).toContain('(HEALTHCHECK_FAILED)');
    const viewer = (await createApiKey(server.ctx.db, 'dep-viewer', 'viewer')).key;
    const deps = (await (await fetch(`${server.url}/api/v1/deployments?environment=production`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { deployments: { id: string; status: string; reason: string; message: string; commit: string }[] };
    const v2 = deps.deployments.find((d) => d.commit === bad)!;
    expect(v2).toMatchObject({ status: 'failed', reason: 'HEALTHCHECK_FAILED' });
    expect(v2.message).toMatch(/HTTP 404.*rolled back to sha256:/);
    // The old version runs and answers again.
    expect(runcState()).toBe('running');
    expect(await page()).toBe('v1');
    deploymentId = deps.deployments.find((d) => d.commit === good)!.id;
  }, 180_000);

  it('stops, starts, restarts, pauses, resumes and kills the app through the API, audited', async () => {
    await host.agent.resync();
    const expectState = async (action: string, runc: string, extra: Record<string, unknown> = {}) => {
      const res = await act(action, extra);
      const body = (await res.json()) as { results?: { state?: string }[]; error?: unknown };
      expect([action, res.status, body.results?.[0]?.state]).toEqual([action, 200, runc === 'absent' ? 'stopped' : runc]);
      expect([action, runcState()]).toEqual([action, runc]);
    };
    await expectState('pause', 'paused');
    await expectState('resume', 'running');
    const pidBefore = (await host.runtime.state(CONTAINER)).pid;
    await expectState('restart', 'running');
    expect((await host.runtime.state(CONTAINER)).pid).not.toBe(pidBefore);
    await expectState('stop', 'absent');
    await expectState('start', 'running');
    await until('answers after start', async () => (await page()) === 'v1', 10_000);
    await expectState('kill', 'absent', { signal: 'KILL' });
    expect((await host.runtime.state(CONTAINER)).exitCode).toBe(137);
    await expectState('start', 'running');

    // The per-container route of one host acts the same way.
    const one = await act('pause', {}, operator, `/api/v1/hosts/${host.agent.hostId}/containers/${CONTAINER}/actions`);
    expect(one.status).toBe(200);
    expect(runcState()).toBe('paused');
    // Stop of a paused app: thawed, then stopped within its grace period.
    await expectState('stop', 'absent');

    // Roles, bad input, unknown containers.
    const viewer = (await createApiKey(server.ctx.db, 'act-viewer', 'viewer')).key;
    expect((await act('start', {}, viewer)).status).toBe(403);
    expect(runcState()).toBe('absent');
    expect((await act('explode')).status).toBe(400);
    expect((await act('kill', { signal: 'SIGSEGV' })).status).toBe(400);
    expect((await act('start', {}, operator, `/api/v1/deployments/nope/actions`)).status).toBe(404);
    const missing = await act('stop', {}, operator, `/api/v1/hosts/${host.agent.hostId}/containers/${containerIdFor('production', 'nope')}/actions`);
    expect([missing.status, ((await missing.json()) as { error: { code: string } }).error.code]).toEqual([404, 'CONTAINER_NOT_FOUND']);

    // Every request is in the audit log with who asked and what the host answered.
    const auditor = (await createApiKey(server.ctx.db, 'auditor', 'auditor')).key;
    const audit = (await (await fetch(`${server.url}/api/v1/audit?kind=container.action&limit=100`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as { entries: { subject: string; record: { action: string; principal: { id: string }; results: { state?: string; code?: string }[] } }[] };
    const actions = audit.entries.map((e) => e.record.action).reverse();
    expect(actions).toEqual(['pause', 'resume', 'restart', 'stop', 'start', 'kill', 'start', 'pause', 'stop', 'stop']);
    expect(audit.entries.every((e) => e.record.principal?.id)).toBe(true);
    expect(audit.entries[0].record.results[0].code).toBe('CONTAINER_NOT_FOUND');
  }, 120_000);

  it('suspends the app from the desired state (stopped, not removed, not restarted) and starts it again', async () => {
    expect((await act('start')).status).toBe(200);
    expect(runcState()).toBe('running');
    const viewer = (await createApiKey(server.ctx.db, 'suspend-viewer', 'viewer')).key;
    const get = async <T>(path: string) => (await (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as T;
    const final = async (sha: string) => (await until(`final status of ${sha}`, () => fx.finalStatuses(sha)[0], 90_000)).body as { state: string; description: string };

    // A new bundle (restart = "always") arrives suspended: deployed, proved healthy, then stopped.
    const v3 = await fx.signedApp('acme/web-v3', webApp('v3', '/healthz', 'always'));
    const suspend = fx.commit({ web: { bundle: v3, suspended: true } }, 'web v3, suspended');
    expect(await fx.webhook(server.url, suspend)).toBe(202);
    expect(await final(suspend)).toMatchObject({ state: 'success', description: expect.stringContaining('suspended on 1 host(s)') });
    expect(runcState()).toBe('absent');
    const rec = await host.runtime.state(CONTAINER);
    expect([rec.status, rec.held, rec.imageDigest]).toEqual(['stopped', true, v3.split('@')[1]]);

    const deps = await get<{ deployments: { commit: string; status: string; suspended: boolean }[] }>('/api/v1/deployments?environment=production');
    expect(deps.deployments.find((d) => d.commit === suspend)).toMatchObject({ status: 'succeeded', suspended: true });
    await host.agent.resync();
    await until('drift in sync with the app suspended', async () => {
      const d = await get<{ inSync: boolean; suspended: { app: string; state: string }[] }>('/api/v1/drift');
      return d.inSync && d.suspended.some((x) => x.app === 'web' && x.state === 'suspended');
    }, 10_000);
    const overview = await get<{ apps: { app: string; environments: Record<string, { sync: string; health: string; suspended: boolean }> }[] }>('/api/v1/overview');
    expect(overview.apps.find((a) => a.app === 'web')!.environments.production).toMatchObject({ sync: 'in-sync', health: 'suspended', suspended: true });

    // restart = "always" does not start it, even long after; nor does an agent restarted on this state.
    expect(await host.runner.applyRestartPolicy(Date.now() + 600_000)).toEqual([]);
    const policies = new PolicyStore([fx.policiesDir]);
    await policies.reload();
    const facts = await collectFacts();
    const restarted = new LocalRunner({ stateDir: `${fx.dir}/host-1`, trust: () => fx.trust, policies, facts: async () => facts, runtime: host.runtime });
    await host.runtime.recover();
    expect((await restarted.inventory()).find((c) => c.id === CONTAINER)).toMatchObject({ state: 'stopped', suspended: true });
    expect(await restarted.applyRestartPolicy(Date.now() + 600_000)).toEqual([]);
    expect(runcState()).toBe('absent');

    // A container started by hand while suspended is drift (NOT_SUSPENDED).
    expect((await act('start', {}, operator, `/api/v1/hosts/${host.agent.hostId}/containers/${CONTAINER}/actions`)).status).toBe(200);
    await host.agent.resync();
    await until('drift NOT_SUSPENDED', async () => (await get<{ drift: { reason: string }[] }>('/api/v1/drift')).drift.some((x) => x.reason === 'NOT_SUSPENDED'), 10_000);
    expect((await act('stop', {}, operator, `/api/v1/hosts/${host.agent.hostId}/containers/${CONTAINER}/actions`)).status).toBe(200);

    // Dropping the flag starts the same bundle again.
    const resume = fx.commit({ web: v3 }, 'web v3, running');
    expect(await fx.webhook(server.url, resume)).toBe(202);
    expect(await final(resume)).toMatchObject({ state: 'success', description: expect.stringContaining('running on 1 host(s)') });
    expect(runcState()).toBe('running');
    expect(await page()).toBe('v3');
    await host.agent.resync();
    expect((await get<{ inSync: boolean }>('/api/v1/drift')).inSync).toBe(true);
  }, 240_000);

  it('ct host stop goes through the agent: CONTAINER_BUSY while a deploy replaces the app, done in its turn after', async () => {
    const stateDir = `${fx.dir}/host-1`;
    const ctHost = (...args: string[]) => runCt(['host', ...args, CONTAINER, '--state-dir', stateDir]);
    // v4 becomes healthy only ~4 s after it starts: the deploy is in flight meanwhile.
    const v4 = await fx.signedApp('acme/web-v4', webApp('v4', '/healthz').replace('echo ok > /tmp/www/healthz &&', '{ (sleep 4; echo ok > /tmp/www/healthz) & } &&').replace('start_period = 1', 'start_period = 8'));
    const sha = fx.commit({ web: v4 }, 'web v4, slow to be healthy');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    await until('v4 starting on the host', () => host.runtime.store.get(CONTAINER)?.imageDigest === v4.split('@')[1] && host.runtime.store.get(CONTAINER)?.status === 'running', 60_000);
    const busy = await ctHost('stop');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/CONTAINER_BUSY/);
    expect(runcState()).toBe('running');
    const [done] = await until('v4 final status', () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha), 90_000);
    expect(done.body.state).toBe('success');
    expect(await page()).toBe('v4');
    // No deploy in hand: the agent does it (and holds it, as the API's stop does).
    const stop = await ctHost('stop', '-t', '1');
    expect([stop.code, stop.stdout.trim()]).toEqual([0, expect.stringMatching(new RegExp(`^${CONTAINER}: stopped`))]);
    expect(runcState()).toBe('absent');
    expect(host.runtime.store.get(CONTAINER)?.held).toBe(true);
    expect((await ctHost('start')).stdout.trim()).toBe(`${CONTAINER}: running`);
    expect(runcState()).toBe('running');
  }, 180_000);
});
