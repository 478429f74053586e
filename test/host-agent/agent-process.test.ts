/**
 * Issue 7 acceptance with the agent as users run it: `ct host run` as a child process, enrolled
 * against a deploy server started here, fed by deployments posted to the server's API. The agent
 * is killed with SIGKILL: its containers keep running (runc says so), and after a restart the
 * agent recovers their state — a container that exited meanwhile is reported with the exit code
 * its supervisor kept, one whose supervisor died too as stopped with the code unknown — which the
 * server shows in `GET /api/v1/hosts`. An assignment whose generation is not above the last one the
 * host accepted is refused (STALE_GENERATION) and touches nothing; bytes the server serves are
 * checked against the assigned digest; a bundle whose policy requires AppArmor never runs on a host
 * without it (denied by the server, or refused by a host whose own policies are stricter); exits
 * reach the server within seconds; enrolment failures and SIGTERM end `ct host run` with stable codes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, copyFileSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { apparmorFacts } from '../../host/facts.js';
import { pushCtp } from '../../src/oci/push.js';
import type { InventoryItem } from '../../src/protocol/messages.js';
import { repoRoot, runCt } from '../support/cli.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { agentFixture, pidAlive, runcDeleteAll, runcKill, runcList, runcState, until, type AgentFixture } from './fixture.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

const HOST = 'prod-1';
const KEEP = containerIdFor('production', 'keep');
const EXITS = containerIdFor('production', 'exits');
const ORPHAN = containerIdFor('production', 'orphan');

interface AgentProc { child: ChildProcess; stdout: string; stderr: string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }
interface HostView { name: string; connected: boolean; generation: number; containers: InventoryItem[] }
interface DeploymentView { id: string; status: string; reason: string | null; message: string | null }

describe('ct host run against a deploy server', () => {
  let fx: AgentFixture;
  let registry: TestRegistry;
  let server: RunningServer;
  let admin: string;
  let stateDir: string;
  let agent: AgentProc | undefined;
  const refs: Record<string, string> = {};
  let usedToken = '';

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server.url}${path}`, {
      method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  const extraHosts: { agent: AgentProc; stateDir: string }[] = [];
  const hostNamed = async (name: string) => (await api<{ hosts: HostView[] }>('GET', '/api/v1/hosts')).body.hosts.find((h) => h.name === name);
  const host = () => hostNamed(HOST);
  const mintToken = async (env: string) => {
    const t = await api<{ token: string }>('POST', '/api/v1/hosts/tokens', { labels: { env } });
    expect(t.status).toBe(201);
    return t.body.token;
  };

  const spawnAgent = (enrollToken?: string, name = HOST, dir = stateDir, policies = fx.hostPoliciesDir): AgentProc => {
    const args = [join(repoRoot, 'bin', 'ct.js'), 'host', 'run', '--server', server.url, '--name', name, '--trust-store', fx.trustStorePath,
      '--state-dir', dir, '--policies', policies, ...(enrollToken ? ['--enroll-token', enrollToken] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const p: AgentProc = { child, stdout: '', stderr: '', exit: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))) };
    child.stdout!.on('data', (d: Buffer) => (p.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (p.stderr += d.toString()));
    return p;
  };

  /** POST /api/v1/deployments, then the deployment's final status as the server records it. */
  const deploy = async (app: string, environment = 'production'): Promise<DeploymentView> => {
    const commit = randomBytes(20).toString('hex');
    const created = await api<{ id: string; created: boolean }>('POST', '/api/v1/deployments', { environment, app, bundle: refs[app], hosts: { env: environment }, commit });
    expect(created.status).toBe(202);
    let last: DeploymentView | undefined;
    return until(`deployment of ${app}`, async () => {
      last = (await api<DeploymentView>('GET', `/api/v1/deployments/${created.body.id}`)).body;
      return ['succeeded', 'failed', 'denied'].includes(last.status) && last;
    }).catch((e: Error) => {
      throw new Error(`${e.message} to ${environment}: last seen ${JSON.stringify(last)}\nagent stderr: ${agent?.stderr.slice(-2000)}`);
    });
  };

  beforeAll(async () => {
    fx = await agentFixture();
    registry = await startRegistry();
    for (const app of ['keep', 'exits', 'orphan', 'armored']) {
      const r = await pushCtp(fx.bundles[app === 'armored' ? 'armored' : 'signed'].path, `${registry.host}/acme/${app}:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
      refs[app] = `${registry.host}/acme/${app}@${r.imageDigest}`;
    }
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: join(fx.dir, 'server'), policies: fx.policiesDir, trustStore: fx.trustStorePath,
      registries: { allow: [registry.host], allowedAddresses: ['127.0.0.1'], insecure: [registry.host] },
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 30_000 }) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    stateDir = join(fx.dir, 'host');
    usedToken = await mintToken('production');
    agent = spawnAgent(usedToken);
    await until('agent enrolled and connected', async () => (await host())?.connected, 20_000).catch((e) => {
      throw new Error(`${(e as Error).message}\nagent stdout: ${agent?.stdout}\nagent stderr: ${agent?.stderr}`);
    });
  }, 90_000);

  afterAll(async () => {
    for (const a of [agent, ...extraHosts.map((h) => h.agent)]) {
      if (a && a.child.exitCode === null && a.child.signalCode === null) {
        a.child.kill('SIGKILL');
        await a.exit;
      }
    }
    for (const dir of [stateDir, ...extraHosts.map((h) => h.stateDir)]) {
      if (!dir) continue;
      const rt = await RuncRuntime.open({ stateDir: dir }).catch(() => undefined);
      for (const c of (await rt?.list().catch(() => [])) ?? []) await rt!.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      rt?.close();
      runcDeleteAll(dir);
    }
    await server?.close();
    await registry?.stop();
    await fx?.cleanup();
  }, 30_000);

  it('runs the approved bundles the server dispatches: runc reports them running, the server sees them', async () => {
    const results = await Promise.all(['keep', 'exits', 'orphan'].map((app) => deploy(app)));
    expect(results.map((d) => `${d.status}:${d.reason ?? ''}`)).toEqual(['succeeded:', 'succeeded:', 'succeeded:']);
    for (const id of [KEEP, EXITS, ORPHAN]) expect(runcState(stateDir, id)?.status).toBe('running');
    const h = await until('inventory with three running containers', async () => {
      const x = await host();
      return x && x.containers.filter((c) => c.state === 'running').length === 3 && x;
    });
    expect(h.containers.map((c) => c.id).sort()).toEqual([EXITS, KEEP, ORPHAN]);
    expect(h.generation).toBe(3);
  }, 60_000);

  it('kill -9 of the agent leaves its containers running; on restart it recovers what happened meanwhile', async () => {
    const before = Object.fromEntries([KEEP, EXITS, ORPHAN].map((id) => [id, runcState(stateDir, id)!]));
    agent!.child.kill('SIGKILL');
    expect((await agent!.exit).signal).toBe('SIGKILL');
    await until('server sees the host gone', async () => (await host())?.connected === false);

    // Containers outlive the agent: runc still runs each, with the same init process.
    const listed = runcList(stateDir);
    for (const id of [KEEP, EXITS, ORPHAN]) {
      expect(listed.find((c) => c.id === id)).toMatchObject({ status: 'running', pid: before[id].pid });
      expect(pidAlive(before[id].pid)).toBe(true);
    }

    // While the agent is down: one app is killed (its supervisor records the exit status, 128+9)…
    runcKill(stateDir, EXITS, 'KILL');
    await until('runc forgets the exited container', () => runcState(stateDir, EXITS) === undefined);
    // …which is exactly what RuncRuntime.recover() (the agent's start-up step) finds.
    const rt = await RuncRuntime.open({ stateDir });
    let orphanSupervisor: number | null;
    try {
      const r = await rt.recover();
      expect(r.changed).toEqual([{ id: EXITS, from: 'running', to: 'stopped' }]);
      const byId = Object.fromEntries(r.containers.map((c) => [c.id, c]));
      expect(byId[EXITS]).toMatchObject({ status: 'stopped', exitCode: 137, exitKnown: true });
      expect(byId[KEEP]).toMatchObject({ status: 'running', pid: before[KEEP].pid });
      expect(byId[ORPHAN]).toMatchObject({ status: 'running', pid: before[ORPHAN].pid });
      orphanSupervisor = byId[ORPHAN].supervisorPid;
    } finally {
      rt.close();
    }
    // …and another loses its supervisor before it dies: nobody saw its exit status.
    expect(orphanSupervisor).toEqual(expect.any(Number));
    process.kill(orphanSupervisor!, 'SIGKILL');
    runcKill(stateDir, ORPHAN, 'KILL');
    await until('runc forgets the orphaned container', () => runcState(stateDir, ORPHAN) === undefined);

    // The restarted agent (no token: it is enrolled) recovers on its own and tells the server.
    agent = spawnAgent();
    await until('agent reports the recovery', () => agent!.stdout.includes(`recovered ${ORPHAN}: running → stopped`));
    const h = await until('server inventory after the restart', async () => {
      const x = await host();
      return x?.connected && x.containers.find((c) => c.id === ORPHAN)?.state === 'stopped' && x;
    });
    const inv = Object.fromEntries(h.containers.map((c) => [c.id, c]));
    expect(inv[KEEP]).toMatchObject({ state: 'running', app: 'keep', imageDigest: fx.bundles.signed.imageDigest });
    expect(inv[EXITS]).toMatchObject({ state: 'stopped', exitCode: 137 });
    expect(inv[ORPHAN]).toMatchObject({ state: 'stopped', exitCode: null });
    // The container that kept running was never touched.
    expect(runcState(stateDir, KEEP)).toMatchObject({ status: 'running', pid: before[KEEP].pid });
  }, 60_000);

  it('refuses an assignment whose generation is not above the last accepted (STALE_GENERATION), touching nothing', async () => {
    const keepBefore = runcState(stateDir, KEEP)!;
    expect(keepBefore.status).toBe('running');
    // A server whose generation went backwards (a restored database) dispatches generations 1, 2.
    await server.ctx.db.run('UPDATE host_generations SET generation = 0 WHERE host_id = (SELECT id FROM hosts WHERE name = ?)', [HOST]);
    const stale = await deploy('keep');
    expect([stale.status, stale.reason]).toEqual(['failed', 'STALE_GENERATION']);
    expect(runcState(stateDir, KEEP)).toEqual(keepBefore);
    const staleStart = await deploy('exits');
    expect([staleStart.status, staleStart.reason]).toEqual(['failed', 'STALE_GENERATION']);
    expect(runcState(stateDir, EXITS)).toBeUndefined();
    expect(runcList(stateDir).map((c) => c.id)).toEqual([KEEP]);

    // Only the generation stood in the way: above the host's last one, the same deploy runs.
    await server.ctx.db.run('UPDATE host_generations SET generation = 100 WHERE host_id = (SELECT id FROM hosts WHERE name = ?)', [HOST]);
    const fresh = await deploy('exits');
    expect([fresh.status, fresh.reason]).toEqual(['succeeded', null]);
    expect(runcState(stateDir, EXITS)?.status).toBe('running');
    expect(runcState(stateDir, KEEP)).toEqual(keepBefore);
  }, 60_000);

  it('verifies the bytes it downloads itself: a server serving other bytes than it assigned gets DIGEST_MISMATCH, the app runs on', async () => {
    const keepBefore = runcState(stateDir, KEEP)!;
    expect(keepBefore.status).toBe('running');
    // The server's bundle store is corrupted after it verified the bundle (it keeps verified
    // references pinned by digest): it now serves the tampered twin's bytes for the signed digest.
    const stored = join(fx.dir, 'server', 'bundles', `${fx.bundles.signed.bundleDigest.slice(7)}.ctp`);
    expect(existsSync(stored)).toBe(true);
    copyFileSync(fx.bundles.tampered.path, stored);
    // A host keeps bundles it ran and does not download them again: drop this one so it must.
    rmSync(join(stateDir, 'bundles', `${fx.bundles.signed.bundleDigest.slice(7)}.ctp`), { force: true });
    // What downloads killed earlier left: this digest's is removed by its next download, another's stays.
    const leftover = join(stateDir, 'bundles', `.${fx.bundles.signed.bundleDigest.slice(7)}.ctp.0123456789ab.tmp`);
    const other = join(stateDir, 'bundles', `.${'0'.repeat(64)}.ctp.0123456789ab.tmp`);
    writeFileSync(leftover, 'half a download');
    writeFileSync(other, 'half another');
    try {
      const d = await deploy('keep');
      expect([existsSync(leftover), existsSync(other)]).toEqual([false, true]);
      expect([d.status, d.reason]).toEqual(['failed', 'DIGEST_MISMATCH']);
    } finally {
      copyFileSync(fx.bundles.signed.path, stored);
    }
    expect(runcState(stateDir, KEEP)).toEqual(keepBefore);
    // The host's download store never keeps other bytes under the assigned digest's name.
    const downloaded = join(stateDir, 'bundles', `${fx.bundles.signed.bundleDigest.slice(7)}.ctp`);
    if (existsSync(downloaded)) expect(`sha256:${createHash('sha256').update(readFileSync(downloaded)).digest('hex')}`).toBe(fx.bundles.signed.bundleDigest);
  }, 60_000);

  it('a deployment whose policy requires AppArmor runs only where AppArmor enforces: denied by the server, refused by a stricter host, with the code', async () => {
    // Deploys go to hosts of their environment: one more `ct host run` for each of `hardened` and `edge`.
    for (const env of ['hardened', 'edge']) {
      const dir = join(fx.dir, `host-${env}`);
      extraHosts.push({ agent: spawnAgent(await mintToken(env), `${env}-1`, dir), stateDir: dir });
    }
    await until('hardened-1 and edge-1 connected', async () => (await hostNamed('hardened-1'))?.connected && (await hostNamed('edge-1'))?.connected);
    const [hardened, edge] = extraHosts.map((h) => h.stateDir);
    const facts = await apparmorFacts();
    if (facts.enforcing) {
      // A kernel with AppArmor (CI runners usually have it; this machine does not): both run, confined.
      for (const [env, dir] of [['hardened', hardened], ['edge', edge]]) {
        const d = await deploy('armored', env);
        expect([d.status, d.reason]).toEqual(['succeeded', null]);
        const st = runcState(dir, containerIdFor(env, 'armored'));
        expect(st?.status).toBe('running');
        expect(readFileSync(`/proc/${st!.pid}/attr/current`, 'utf8')).toMatch(/\(enforce\)/);
      }
      return;
    }
    // The server's own policy for `hardened` requires AppArmor: it judges with the host's facts and denies.
    const denied = await deploy('armored', 'hardened');
    expect([denied.status, denied.reason]).toEqual(['denied', 'HOST_APPARMOR_NOT_ENFORCING']);
    // In `edge` the server allows it, but this host's own policies require AppArmor there: the
    // host judges again with its own policies and facts, and refuses.
    const refused = await deploy('armored', 'edge');
    expect([refused.status, refused.reason]).toEqual(['failed', 'HOST_APPARMOR_NOT_ENFORCING']);
    for (const dir of [hardened, edge]) expect(runcList(dir)).toEqual([]);
    expect((await hostNamed('edge-1'))?.generation).toBe(1);
    expect(runcList(stateDir).map((c) => c.id).sort()).toEqual([EXITS, KEEP]);
  }, 60_000);

  it('reports an app that exits while the agent runs to the server with its exit code within seconds', async () => {
    // `exits` runs again since the fresh deploy above; the agent is up and connected.
    expect(runcState(stateDir, EXITS)?.status).toBe('running');
    expect((await host())?.containers.find((c) => c.id === EXITS)?.state).toBe('running');
    runcKill(stateDir, EXITS, 'KILL');
    const t0 = Date.now();
    const seen = await until('the server sees the exit', async () => (await host())?.containers.find((c) => c.id === EXITS && c.state === 'stopped'), 15_000);
    expect(seen.exitCode).toBe(137);
    // Well before the 30 s inventory: the agent reports changes as they happen.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(runcState(stateDir, KEEP)?.status).toBe('running');
  }, 30_000);

  it('ct host run without a usable enrolment exits with a stable code and enrols nothing', async () => {
    const dirs = ['none', 'used', 'unknown', 'unreachable'].map((n) => join(fx.dir, `host-${n}`));
    const run = (i: number, server: string, token?: string) => runCt(['host', 'run', '--server', server, '--name', 'edge-2', '--trust-store', fx.trustStorePath,
      '--state-dir', dirs[i], '--policies', fx.hostPoliciesDir, ...(token ? ['--enroll-token', token] : [])], { env: { CT_ENROLL_TOKEN: '' } });
    const [none, used, unknown, unreachable] = await Promise.all([
      run(0, server.url),
      run(1, server.url, usedToken),
      run(2, server.url, 'cte_not-a-token'),
      run(3, `http://127.0.0.1:${await freePort()}`, 'cte_whatever'),
    ]);
    const outcome = (r: { code: number; stderr: string }) => [r.code, /^error\[(\w+)\]/m.exec(r.stderr)?.[1]];
    expect(outcome(none)).toEqual([1, 'USAGE']);
    for (const r of [used, unknown, unreachable]) expect(outcome(r)).toEqual([12, 'NETWORK_ERROR']);
    for (const d of dirs) expect(existsSync(join(d, 'enrolment.json'))).toBe(false);
    expect(await hostNamed('edge-2')).toBeUndefined();
  }, 90_000); // four ct processes start at once: on a loaded 2-core machine their start-up alone took over 30 s

  it('ct host run of a host the server removed stops with HOST_REMOVED (exit 12) and one line saying to enrol again', async () => {
    const dir = join(fx.dir, 'host-removed');
    const gone = spawnAgent(await mintToken('removed'), 'removed-1', dir);
    extraHosts.push({ agent: gone, stateDir: dir });
    await until('removed-1 connected', async () => Boolean((await hostNamed('removed-1'))?.connected), 20_000);
    const del = await fetch(`${server.url}/api/v1/hosts/removed-1`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    expect(del.status).toBe(204);
    // Before: it kept reconnecting for ever, never exiting.
    const exit = await Promise.race([gone.exit, new Promise((r) => setTimeout(r, 20_000).unref())]);
    expect(exit).toEqual({ code: 12, signal: null });
    const line = gone.stderr.split('\n').find((l) => l.startsWith('error['));
    expect(/^error\[(\w+)\]/.exec(line ?? '')?.[1]).toBe('HOST_REMOVED');
    expect(line).toContain('ct host token');
    // Said once: the agent's own log line names only the code (it was printed twice before).
    expect(gone.stderr.split('ct host token').length - 1).toBe(1);
  }, 60_000);

  it('SIGTERM ends ct host run with exit 0 even while a policy read hangs (a FIFO nobody writes)', async () => {
    const dir = join(fx.dir, 'host-fifo');
    const fifo = join(fx.dir, 'fifo-policies.yaml');
    execFileSync('mkfifo', [fifo]);
    const a = spawnAgent(await mintToken('fifo'), 'fifo-1', dir, fifo);
    extraHosts.push({ agent: a, stateDir: dir });
    await until('fifo-1 connected', async () => Boolean((await hostNamed('fifo-1'))?.connected), 30_000);
    // The file system answers at last (written only while the agent reads it: a write with no
    // reader would block this test): the agent says so.
    await until('the agent reading the FIFO', () => {
      try {
        const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        writeSync(fd, readFileSync(join(fx.hostPoliciesDir, readdirSync(fx.hostPoliciesDir).find((n) => /policy\.ya?ml$/.test(n))!)));
        closeSync(fd);
        return true;
      } catch {
        return false;
      }
    }, 20_000);
    await until('the late policies loaded', () => /policies from .*fifo-policies\.yaml loaded: sha256:[0-9a-f]{64}/.test(a.stderr), 20_000);
    // Read again (SIGHUP): that read hangs on the FIFO. Before, the agent finished its stop and
    // stayed up until the FIFO was written.
    a.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    a.child.kill('SIGTERM');
    const exit = await Promise.race([a.exit, new Promise((r) => setTimeout(r, 15_000).unref())]);
    expect(exit).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('SIGTERM ends ct host run with exit 0 and leaves its containers running', async () => {
    const keepBefore = runcState(stateDir, KEEP)!;
    expect(keepBefore.status).toBe('running');
    agent!.child.kill('SIGTERM');
    expect(await agent!.exit).toEqual({ code: 0, signal: null });
    expect(runcState(stateDir, KEEP)).toEqual(keepBefore);
    await until('server sees the host gone', async () => (await host())?.connected === false);
  }, 30_000);
});
