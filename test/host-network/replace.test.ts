/**
 * Issue 11, health-gated updates with bridge networking, through the deploy server (GitOps commit,
 * GitHub commit statuses) and an in-process host agent under runc with netavark:
 *  - an unhealthy new bundle of an app with a published port is rolled back without a request
 *    lost: the new one ran beside the old one (host/lifecycle/side-by-side.ts), the old one kept
 *    its pid, address and port, `curl 127.0.0.1:<port>` never failed under a light load, the
 *    commit status is `failure` with HEALTHCHECK_FAILED, and exactly one netns/veth/port rule is
 *    left for the app;
 *  - a healthy replace under the same load loses no request either: the port moves atomically to
 *    the new container, the old one is drained and removed;
 *  - a pause or a stop of the app while a deploy replaces it is refused (CONTAINER_BUSY, 409), the
 *    deploy goes on, and the app ends running the new version;
 *  - an app that allocates past its memory limit ends the deployment `failed` with OOM_KILLED, the
 *    commit status says so, and the host's inventory reports exit 137 / OOM_KILLED.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { get } from 'node:http';
import { join } from 'node:path';
import type { RunningServer } from '../../server/start.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { findNetavark } from '../../host/network/index.js';
import { replaceRecordPath, saveReplaceRecord } from '../../host/lifecycle/replace-record.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { freePort } from '../support/registry.js';
import { loopFixture, startLoopServer, startTestHost, until, type LoopFixture, type TestHost } from '../e2e/fixture.js';
import { listArtifacts } from './artifacts.js';
import { claimSubnetBase } from '../support/subnets.js';

const pid = process.pid;
// Names unique to this test process: other tests deploy `production/web` with bridges too.
const APP = `web-${pid}`;
const HOG = `hog-${pid}`;
const NET = { subnetBase: claimSubnetBase(), bridgePrefix: `ctr${pid % 100000}b` };
const CONTAINER = containerIdFor('production', APP);

/** busybox httpd serving `version` on 8080 on the environment's bridge, health-checked on `healthPath`. */
const webApp = (version: string, healthPath: string, startPeriod = 1) => `name = "web"
version = "${version}"

[runtime]
user = "65534:65534"
read_only_rootfs = true
capabilities = []
network = "bridge"
ports = ["8080/tcp"]
command = ["/bin/busybox", "sh", "-c", "mkdir -p /tmp/www && echo ${version} > /tmp/www/index.html && echo ok > /tmp/www/healthz && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"]
stop_grace_period = 1

[runtime.healthcheck]
type = "http"
port = 8080
path = "${healthPath}"
interval = 0.3
timeout = 1
retries = 3
start_period = ${startPeriod}
`;

/** Starts, then fills its tmpfs past a 16 MiB memory limit; healthy only once it serves (never). */
const hogApp = `name = "hog"
version = "1.0.0"

[runtime]
user = "65534:65534"
read_only_rootfs = true
capabilities = []
network = "none"
command = ["/bin/busybox", "sh", "-c", "sleep 1; exec /bin/busybox dd if=/dev/zero of=/tmp/fill bs=1048576 count=64"]

[runtime.resources]
memory = "16M"

[runtime.healthcheck]
type = "tcp"
port = 8080
interval = 0.3
timeout = 0.5
retries = 3
start_period = 10
`;

describe('health-gated replace with bridge networking, and OOM, through the deploy server', () => {
  let fx: LoopFixture;
  let server: RunningServer;
  let host: TestHost;
  let admin: string;
  let port: number;
  const refs: Record<string, string> = {};

  /** The runc id the app's container runs under (its own, or the one it was started under beside the old one). */
  const runcId = (): string => host.runtime.store.get(CONTAINER)?.runcId ?? CONTAINER;
  const runcState = (id = runcId()): string => {
    try {
      return (JSON.parse(execFileSync('runc', ['--root', host.runtime.root, 'state', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { status: string }).status;
    } catch {
      return 'absent';
    }
  };
  const curl = async (): Promise<string> => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      return `${r.status} ${(await r.text()).trim()}`;
    } catch (e) {
      return `unreachable (${(e as Error).message})`;
    }
  };
  /**
   * A light constant load (one new connection every 20 ms, 50 req/s) on the published port until
   * stopped: what a user of the app sees during a deploy. Counts answers by body, and failures.
   */
  const load = () => {
    const seen: Record<string, number> = {};
    let failed = 0;
    const errors: string[] = [];
    const inflight = new Set<Promise<void>>();
    const fail = (why: string) => {
      failed++;
      errors.push(why);
    };
    const one = () => new Promise<void>((resolve) => {
      const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          if (res.statusCode === 200) seen[body.trim()] = (seen[body.trim()] ?? 0) + 1;
          else fail(`HTTP ${res.statusCode}`);
          resolve();
        });
        res.on('error', (e) => (fail(e.message), resolve()));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => (fail(e.message), resolve()));
    });
    const timer = setInterval(() => {
      const p = one();
      inflight.add(p);
      void p.then(() => inflight.delete(p));
    }, 20);
    return {
      async stop() {
        clearInterval(timer);
        await Promise.all(inflight);
        return { seen, failed, errors: [...new Set(errors)].slice(0, 5) };
      },
    };
  };
  const deployCommit = async (apps: Parameters<LoopFixture['commit']>[0], message: string, ms = 120_000) => {
    const sha = fx.commit(apps, message);
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const [status] = await until(`final status of ${message}`, () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha), ms);
    return { sha, status: status.body as { state: string; description: string } };
  };
  const deployments = async () =>
    ((await (await fetch(`${server.url}/api/v1/deployments?environment=production`, { headers: { authorization: `Bearer ${admin}` } })).json()) as {
      deployments: { id: string; app: string; status: string; reason: string | null; message: string | null; commit: string }[];
    }).deployments;
  const action = async (action: string) => {
    const res = await fetch(`${server.url}/api/v1/hosts/${host.agent.hostId}/containers/${CONTAINER}/actions`, {
      method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ action }),
    });
    return { status: res.status, code: ((await res.json()) as { error?: { code?: string } }).error?.code };
  };
  const scope = { netnsPrefix: CONTAINER, bridgePrefix: NET.bridgePrefix, subnetBase: NET.subnetBase };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host networking tests run as root (CI does)');
    await findNetavark();
    fx = await loopFixture();
    // The environment may publish loopback ports in the random range and talk to its own apps.
    const policy = join(fx.policiesDir, 'prod.policy.yaml');
    writeFileSync(policy, `${readFileSync(policy, 'utf8')}  network:\n    publish:\n      - ports: "1024-65535"\n        addresses: [127.0.0.1]\n    egress: environment\n`);
    server = await startLoopServer(fx);
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    host = await startTestHost(server.url, admin, fx, `host-net-${pid}`, { network: NET });
    [refs.v1, refs.bad, refs.v3, refs.hog] = await Promise.all([
      fx.signedApp('acme/web', webApp('v1', '/healthz')),
      fx.signedApp('acme/web-bad', webApp('v2', '/missing')),
      // Healthy, but only after its start period: a deploy of it takes a few seconds.
      // Serves after 2 s, within its 4 s start period: with a 1 s one, its third failed check came
      // before the server started whenever the probes were quick (an idle machine).
      fx.signedApp('acme/web-slow', webApp('v3', '/healthz', 4).replace('exec /bin/busybox httpd', 'sleep 2 && exec /bin/busybox httpd')),
      fx.signedApp('acme/hog', hogApp),
    ]);
    port = await freePort();
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    if (host) expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    await server?.close();
    await fx?.cleanup();
  }, 150_000);

  it('rolls an unhealthy bundle back without a request lost: the old version never stopped answering, HEALTHCHECK_FAILED', async () => {
    const ports = [{ host: port, container: 8080, address: '127.0.0.1' }];
    const good = await deployCommit({ [APP]: { bundle: refs.v1, ports } }, 'web v1');
    expect(good.status.state).toBe('success');
    expect(await until('v1 on the published port', async () => (await curl()) === '200 v1' && '200 v1', 10_000)).toBe('200 v1');
    const addressBefore = host.network!.attachment(runcId())!.address;
    const pidBefore = (await host.runtime.state(CONTAINER)).pid;

    const traffic = load();
    const bad = await deployCommit({ [APP]: { bundle: refs.bad, ports } }, 'web v2 (unhealthy)');
    // The old version served every request while the new one was tried and discarded.
    const during = await traffic.stop();
    expect([during.failed, during.errors, Object.keys(during.seen)]).toEqual([0, [], ['v1']]);
    expect(during.seen.v1).toBeGreaterThan(20);
    expect(bad.status.state).toBe('failure');
    expect(bad.status.description).toContain('(HEALTHCHECK_FAILED)');
    const v2 = (await deployments()).find((d) => d.commit === bad.sha)!;
    expect(v2).toMatchObject({ status: 'failed', reason: 'HEALTHCHECK_FAILED' });
    expect(v2.message).toMatch(/HTTP 404.*rolled back to sha256:.*\(running\)/);
    // The old version never stopped: same process, same address, its port still published.
    expect(runcState()).toBe('running');
    expect((await host.runtime.state(CONTAINER)).pid).toBe(pidBefore);
    expect(await curl()).toBe('200 v1');
    const att = host.network!.attachment(runcId())!;
    expect([att.phase, att.ports, att.address]).toEqual(['up', [{ host: port, container: 8080, address: '127.0.0.1', protocol: 'tcp' }], addressBefore]);
    // Nothing of the failed container is left: one container, one netns, one veth, the port's DNAT rule once.
    expect(host.runtime.store.list().map((c) => c.id)).toEqual([CONTAINER]);
    const a = listArtifacts(scope);
    expect([a.netns, a.veths.length]).toEqual([[runcId()], 1]);
    const dnat = listArtifacts({ ...scope, netnsPrefix: '-' }).rules.filter((r) => r.includes(`--dport ${port}`) && r.includes('--to-destination'));
    expect(dnat).toEqual([expect.stringContaining(`--to-destination ${att.address}:8080`)]);
  }, 150_000);

  it('refuses a new bundle whose port a host process holds (PORT_IN_USE) without touching the running one', async () => {
    const before = await host.runtime.state(CONTAINER);
    const busy = await freePort();
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(busy, '127.0.0.1', r));
    try {
      const r = await deployCommit({ [APP]: { bundle: refs.v3, ports: [{ host: busy, container: 8080, address: '127.0.0.1' }] } }, 'web v3 on a taken port');
      expect(r.status.state).toBe('failure');
      expect(r.status.description).toContain('(PORT_IN_USE)');
    } finally {
      srv.close();
    }
    const after = await host.runtime.state(CONTAINER);
    expect([after.status, after.pid]).toEqual(['running', before.pid]);
    expect(await curl()).toBe('200 v1');
    expect(host.network!.attachment(runcId())!.ports.map((p) => p.host)).toEqual([port]);
  }, 150_000);

  it('replaces a healthy bundle without a request lost, and refuses a pause or a stop meanwhile (CONTAINER_BUSY)', async () => {
    const oldRunc = runcId();
    // A record an earlier in-place replace kept (its ending failed, docs/host-protocol.md): the
    // side-by-side deploy that replaces the app ends it, or the actions below stay refused.
    const stateDir = join(fx.dir, `host-net-${pid}`);
    await saveReplaceRecord(stateDir, { version: 1, id: CONTAINER, rootfs: join(stateDir, 'rootfs', `${CONTAINER}-999`), assigned: '{}\n' });
    const traffic = load();
    const sha = fx.commit({ [APP]: { bundle: refs.v3, ports: [{ host: port, container: 8080, address: '127.0.0.1' }] } }, 'web v3 (slow start)');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    // The new container runs beside the old one and is being health-checked: the old one still serves.
    const candidate = () => host.runtime.store.list().find((c) => c.replaces === CONTAINER);
    await until('v3 starting beside v1', async () => candidate()?.health === 'starting', 90_000).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify((await deployments()).slice(0, 3))} ${JSON.stringify(host.runtime.store.list())}`);
    });
    expect([runcState(oldRunc), runcState(candidate()!.runcId), (await host.runtime.state(CONTAINER)).health]).toEqual(['running', 'running', 'healthy']);
    // Two netns for the app during the replace, each with its own address.
    expect(listArtifacts(scope).netns).toEqual([oldRunc, candidate()!.runcId].sort());
    expect(await action('pause')).toEqual({ status: 409, code: 'CONTAINER_BUSY' });
    expect(await action('stop')).toEqual({ status: 409, code: 'CONTAINER_BUSY' });
    const [status] = await until('v3 final status', () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha), 90_000);
    expect(`${status.body.state} ${status.body.description}`).toMatch(/^success /);
    expect(await curl()).toBe('200 v3');
    const during = await traffic.stop();
    // Not one request refused or failed: v1 answered until the switch, v3 after it.
    expect([during.failed, during.errors, Object.keys(during.seen).sort()]).toEqual([0, [], ['v1', 'v3']]);
    // The app's container now runs under the runc id it was started under; the old one is gone.
    expect(runcId()).not.toBe(oldRunc);
    expect([runcState(), runcState(oldRunc)]).toEqual(['running', 'absent']);
    expect(host.runtime.store.list().filter((c) => c.appName === APP).map((c) => [c.id, c.replaces])).toEqual([[CONTAINER, null]]);
    const a = listArtifacts(scope);
    expect([a.netns, a.veths.length]).toEqual([[runcId()], 1]);
    const att = host.network!.attachment(runcId())!;
    const dnat = listArtifacts({ ...scope, netnsPrefix: '-' }).rules.filter((r) => r.includes(`--dport ${port}`) && r.includes('--to-destination'));
    expect(dnat).toEqual([expect.stringContaining(`--to-destination ${att.address}:8080`)]);
    // Once the deploy has ended, the same actions are carried out.
    expect(existsSync(replaceRecordPath(stateDir, CONTAINER))).toBe(false);
    expect((await action('pause')).status).toBe(200);
    expect(runcState()).toBe('paused');
    expect((await action('resume')).status).toBe(200);
    expect(runcState()).toBe('running');
  }, 150_000);

  it('reports an app killed for allocating past its memory limit as OOM_KILLED, in the deployment, the commit status and the inventory', async () => {
    const ports = [{ host: port, container: 8080, address: '127.0.0.1' }];
    const r = await deployCommit({ [APP]: { bundle: refs.v3, ports }, [HOG]: refs.hog }, 'hog', 120_000);
    const statuses = fx.finalStatuses(r.sha).map((s) => s.body as { state: string; description: string });
    expect(statuses.some((s) => s.state === 'failure' && s.description.includes('(OOM_KILLED)'))).toBe(true);
    const hog = (await deployments()).find((d) => d.commit === r.sha && d.app === HOG)!;
    expect(hog).toMatchObject({ status: 'failed', reason: 'OOM_KILLED' });
    expect(hog.message).toContain('killed by the OOM killer');
    await host.agent.resync();
    const hogId = containerIdFor('production', HOG);
    const inventory = await until('the inventory reports the OOM kill', async () => {
      const hosts = ((await (await fetch(`${server.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { hosts: { containers: { id: string; state: string; exitCode: number | null; exitReason: string | null }[] }[] }).hosts;
      return hosts.flatMap((h) => h.containers).find((c) => c.id === hogId && c.exitReason);
    }, 10_000);
    expect(inventory).toMatchObject({ state: 'stopped', exitCode: 137, exitReason: 'OOM_KILLED' });
    // The web app of the same commit is untouched.
    expect(await curl()).toBe('200 v3');
  }, 150_000);
});
