/**
 * Issue 11 acceptance (networking), end to end as users run it: examples/http packed and signed
 * with `ct`, pushed to a local docker-registry, deployed through the deploy server's API with a
 * published port to `ct host run` agents (root, runc, netavark 1.4, aardvark-dns).
 *  - `curl 127.0.0.1:<port>` from the host answers 200 with the example's page;
 *  - a second app of the same environment reaches the first by name (runc exec in it: its own
 *    resolv.conf, aardvark-dns);
 *  - an app of another environment (another host agent, its own bridge) reaches it neither by name
 *    nor by address;
 *  - a port the policy does not allow is refused before anything starts (PORT_NOT_ALLOWED);
 *  - after `kill -9` of an agent in the middle of `netavark setup` and a restart, no netns, veth,
 *    bridge or iptables rule is left that belongs to no running container.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { NetworkStore } from '../../host/network/store.js';
import { pushCtp } from '../../src/oci/push.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { repoRoot, runCt } from '../support/cli.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { runcDeleteAll, runcState, until } from '../host-agent/fixture.js';
import { listArtifacts } from './artifacts.js';
import { claimSubnetBase } from '../support/subnets.js';

const pid = process.pid;
interface Agent { child: ChildProcess; stdout: string; stderr: string; exit: Promise<unknown>; stateDir: string }
interface DeploymentView { id: string; status: string; reason: string | null; message: string | null }

// Each agent has its own pool and bridge names (two agents on one machine stand for two hosts).
const HOSTS = {
  production: { name: 'net-prod', pool: claimSubnetBase(), prefix: `ctd${pid % 100000}p` },
  staging: { name: 'net-staging', pool: claimSubnetBase(), prefix: `ctd${pid % 100000}s` },
} as const;
type Env = keyof typeof HOSTS;

describe('bridge networking through the deploy server (issue 11)', () => {
  let dir: string;
  const p = (n: string) => join(dir, n);
  let logs: LogServer[] = [];
  let registry: TestRegistry;
  let server: RunningServer;
  let admin: string;
  let ref: string;
  const agents: Partial<Record<Env, Agent>> = {};
  let webPort: number;

  const ct = async (args: string[]) => {
    const r = await runCt(args, { cwd: dir, env: { SOURCE_DATE_EPOCH: '0' } });
    if (r.code !== 0) throw new Error(`ct ${args.join(' ')} → exit ${r.code}\n${r.stderr}`);
    return r.stdout;
  };
  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as T };
  };
  const spawnAgent = (env: Env, stateDir: string, token?: string, netavarkDir?: string): Agent => {
    const h = HOSTS[env];
    const args = [join(repoRoot, 'bin', 'ct.js'), 'host', 'run', '--server', server.url, '--name', h.name, '--trust-store', p('trust.json'), '--state-dir', stateDir,
      '--policies', p('policies'), '--network-pool', h.pool, '--bridge-prefix', h.prefix, ...(token ? ['--enroll-token', token] : []), ...(netavarkDir ? ['--netavark-dir', netavarkDir] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const a: Agent = { child, stdout: '', stderr: '', stateDir, exit: new Promise((r) => child.once('exit', r)) };
    child.stdout!.on('data', (d: Buffer) => (a.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (a.stderr += d.toString()));
    agents[env] = a;
    return a;
  };
  const connected = async (env: Env) => {
    const hosts = (await api<{ hosts: { name: string; connected: boolean }[] }>('GET', '/api/v1/hosts')).body.hosts;
    return hosts.find((h) => h.name === HOSTS[env].name)?.connected === true;
  };
  const deployStart = async (env: Env, app: string, ports?: unknown[]) => {
    const created = await api<{ id: string }>('POST', '/api/v1/deployments', { environment: env, app, bundle: ref, hosts: { env }, commit: randomBytes(20).toString('hex'), ...(ports ? { ports } : {}) });
    expect(created.status).toBe(202);
    return created.body.id;
  };
  const deploy = async (env: Env, app: string, ports?: unknown[]): Promise<DeploymentView> => {
    const id = await deployStart(env, app, ports);
    let last: DeploymentView | undefined;
    return until(`deployment of ${env}/${app}`, async () => {
      last = (await api<DeploymentView>('GET', `/api/v1/deployments/${id}`)).body;
      return ['succeeded', 'failed', 'denied', 'error'].includes(last.status) && last;
    }, 45_000).catch((e: Error) => {
      throw new Error(`${e.message}: last seen ${JSON.stringify(last)}\nagent stderr: ${agents[env]?.stderr.slice(-2000)}`);
    });
  };
  /**
   * Runs `argv` in the container until it succeeds, for at most 5 s: netavark hands a new
   * container's name to aardvark-dns, which takes it up on its own reload, so a lookup in the
   * first instants after a start can miss (as under Podman); the answer of the last try counts.
   */
  const execInOnceResolvable = async (env: Env, app: string, argv: string[]) => {
    for (const end = Date.now() + 5_000; ; await new Promise((r) => setTimeout(r, 250))) {
      try {
        return execIn(env, app, argv);
      } catch (e) {
        if (Date.now() > end) throw e;
      }
    }
  };
  /** Runs a command inside the container (its mounts, its netns), as `runc exec` does. */
  const execIn = (env: Env, app: string, argv: string[]) =>
    execFileSync('runc', ['--root', join(agents[env]!.stateDir, 'runc'), 'exec', containerIdFor(env, app), ...argv], { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host networking tests run as root (CI does)');
    await findNetavark();
    dir = mkdtempSync(join(tmpdir(), 'ct-net-deploy-'));
    logs = [
      await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
      await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
    ];
    await ct(['keygen', '--out', p('signer'), '--no-password']);
    await ct(['trust-store', 'init', '--id', 'net', '-o', p('trust.json')]);
    await ct(['trust-store', 'add-key', p('trust.json'), '--role', 'builders', '--key', p('signer.pub')]);
    for (const l of logs) await ct(['trust-store', 'add-log', p('trust.json'), '--id', l.logId, '--operator', l.operator, '--public-key', l.publicKey, '--url', l.url]);
    const keyId = (JSON.parse(readFileSync(p('trust.json'), 'utf8')) as { keys: { builders: { id: string }[] } }).keys.builders[0].id;
    await ct(['pack', join(repoRoot, 'examples', 'http'), '-o', p('http.ctp')]);
    await ct(['sign', p('http.ctp'), '--key', p('signer.key'), '--log', logs[0].url, '--log', logs[1].url, '--out', p('http.signed.ctp')]);

    mkdirSync(p('policies'));
    for (const env of Object.keys(HOSTS)) {
      writeFileSync(p(`policies/${env}.policy.yaml`), [
        'apiVersion: cerro-torre.dev/v2', 'kind: Policy', `name: ${env}`, 'mode: strict', 'match:', `  environments: [${env}]`,
        'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
        'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', '  network:', '    publish:', '      - ports: "20000-60999"', '        addresses: [127.0.0.1]',
        '    egress: environment', '',
      ].join('\n'));
    }
    registry = await startRegistry();
    const pushed = await pushCtp(p('http.signed.ctp'), `${registry.host}/acme/http:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    ref = `${registry.host}/acme/http@${pushed.imageDigest}`;
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: p('server'), policies: p('policies'), trustStore: p('trust.json'),
      registries: { allow: [registry.host], allowedAddresses: ['127.0.0.1'], insecure: [registry.host] },
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 30_000 }) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    for (const env of Object.keys(HOSTS) as Env[]) {
      const t = await api<{ token: string }>('POST', '/api/v1/hosts/tokens', { labels: { env } });
      spawnAgent(env, p(`host-${env}`), t.body.token);
      await until(`${env} agent connected`, () => connected(env), 20_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${agents[env]?.stderr}`);
      });
    }
  }, 120_000);

  afterAll(async () => {
    for (const a of Object.values(agents)) {
      if (a.child.exitCode === null && a.child.signalCode === null) {
        a.child.kill('SIGKILL');
        await a.exit;
      }
    }
    for (const env of Object.keys(HOSTS) as Env[]) {
      const stateDir = p(`host-${env}`);
      const rt = await RuncRuntime.open({ stateDir }).catch(() => undefined);
      for (const c of (await rt?.list().catch(() => [])) ?? []) await rt!.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      rt?.close();
      runcDeleteAll(stateDir);
      const net = new NetworkManager({ stateDir, subnetBase: HOSTS[env].pool, bridgePrefix: HOSTS[env].prefix });
      await net.recover(() => 'gone');
      net.close();
    }
    await server?.close();
    await registry?.stop();
    for (const l of logs) await l.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('deploys examples/http with a published port: curl 127.0.0.1:<port> answers 200', async () => {
    webPort = await freePort();
    const d = await deploy('production', 'web', [{ host: webPort, container: 8080, address: '127.0.0.1' }]);
    expect([d.status, d.reason]).toEqual(['succeeded', null]);
    expect(runcState(agents.production!.stateDir, containerIdFor('production', 'web'))?.status).toBe('running');
    const page = await until('the page on the published port', async () => {
      const r = await fetch(`http://127.0.0.1:${webPort}/`).catch(() => undefined);
      return r?.status === 200 && (await r.text());
    }, 15_000);
    expect(page).toContain('hello over HTTP from a signed .ctp');
  }, 60_000);

  it('a second app of the same environment reaches the first by name', async () => {
    const d = await deploy('production', 'peer');
    expect(d.status).toBe('succeeded');
    expect(await execInOnceResolvable('production', 'peer', ['/bin/busybox', 'wget', '-qO-', 'http://web:8080/'])).toContain('hello over HTTP from a signed .ctp');
  }, 60_000);

  it('says in the deployment and the host log that an app whose name has dots has no DNS name', async () => {
    // Only single labels are names in the environment (host/network/netavark.ts): `api.v2` runs, unnamed.
    const d = await deploy('production', 'api.v2');
    expect([d.status, d.message]).toEqual(['succeeded', 'running on 1 host(s); app "api.v2" has no DNS name in its environment: only a single label (letters, digits, - and _, at most 63) is one, and other apps reach it by address only']);
    expect(agents.production!.stderr).toContain('deployed with a warning {"deploymentId":');
    expect(agents.production!.stderr).toContain('"app":"production/api.v2"');
    // A single label says nothing besides.
    expect((await deploy('production', 'peer2')).message).toBe('running on 1 host(s)');
  }, 60_000);

  it('an app of another environment reaches it neither by name nor by address', async () => {
    const d = await deploy('staging', 'other');
    expect(d.status).toBe('succeeded');
    const store = new NetworkStore(join(agents.production!.stateDir, 'state.db'));
    const webAddress = store.attachment(containerIdFor('production', 'web'))!.address;
    store.close();
    expect(webAddress.startsWith(`${HOSTS.production.pool}.`)).toBe(true);
    expect(() => execIn('staging', 'other', ['/bin/busybox', 'timeout', '3', '/bin/busybox', 'wget', '-qO-', 'http://web:8080/'])).toThrow();
    expect(() => execIn('staging', 'other', ['/bin/busybox', 'timeout', '3', '/bin/busybox', 'wget', '-qO-', `http://${webAddress}:8080/`])).toThrow();
    // …while within its own environment the same command works (the failure above is the isolation).
    expect(await execInOnceResolvable('staging', 'other', ['/bin/busybox', 'timeout', '3', '/bin/busybox', 'wget', '-qO-', 'http://other:8080/'])).toContain('hello over HTTP');
  }, 60_000);

  it('refuses a port outside the policy, or one already published, before anything starts', async () => {
    const denied = await deploy('production', 'lowport', [{ host: 8081, container: 8080, address: '127.0.0.1' }]);
    expect([denied.status, denied.reason]).toEqual(['failed', 'PORT_NOT_ALLOWED']);
    const taken = await deploy('production', 'thief', [{ host: webPort, container: 8080, address: '127.0.0.1' }]);
    expect([taken.status, taken.reason]).toEqual(['failed', 'PORT_IN_USE']);
    for (const app of ['lowport', 'thief']) expect(runcState(agents.production!.stateDir, containerIdFor('production', app))).toBeUndefined();
    expect((await fetch(`http://127.0.0.1:${webPort}/`)).status).toBe(200);
  }, 60_000);

  it('after kill -9 of the agent during netavark setup and a restart, nothing is left that belongs to no running container', async () => {
    const real = await findNetavark();
    const hang = p('hang');
    mkdirSync(hang);
    const marker = join(hang, 'in-setup');
    writeFileSync(join(hang, 'netavark'), `#!/bin/sh\n"${real.netavark}" "$@"\nrc=$?\nfor a in "$@"; do [ "$a" = setup ] && { echo $$ > "${marker}"; exec sleep 60; }; done\nexit $rc\n`);
    chmodSync(join(hang, 'netavark'), 0o755);
    symlinkSync(real.aardvark, join(hang, 'aardvark-dns'));

    const staging = agents.staging!;
    staging.child.kill('SIGTERM');
    await staging.exit;
    spawnAgent('staging', staging.stateDir, undefined, hang);
    await until('staging agent back (hanging netavark)', () => connected('staging'), 20_000);
    const port = await freePort();
    await deployStart('staging', 'crashy', [{ host: port, container: 8080, address: '127.0.0.1' }]);
    await until('netavark setup in progress', () => existsSync(marker), 30_000);
    const crashId = containerIdFor('staging', 'crashy');
    const scope = { netnsPrefix: 'ct-staging-', bridgePrefix: HOSTS.staging.prefix, subnetBase: HOSTS.staging.pool };
    expect(listArtifacts(scope).netns).toContain(crashId);
    agents.staging!.child.kill('SIGKILL');
    await agents.staging!.exit;
    process.kill(Number(readFileSync(marker, 'utf8')), 'SIGKILL');

    spawnAgent('staging', staging.stateDir);
    await until('staging agent restarted', () => connected('staging'), 20_000);
    // What is left must all belong to running containers (the server may run `crashy` again, properly).
    const left = await until('no leftovers', async () => {
      const a = listArtifacts(scope);
      const running = new Set([containerIdFor('staging', 'other'), ...(runcState(staging.stateDir, crashId)?.status === 'running' ? [crashId] : [])]);
      const orphanRules = a.rules.filter((r) => r.includes(`--dport ${port}`) && !running.has(crashId));
      return a.netns.every((n) => running.has(n)) && a.veths.length === running.size && a.bridges.length === 1 && orphanRules.length === 0 && { a, running };
    }, 20_000);
    expect(left.a.netns.sort()).toEqual([...left.running].sort());
    expect(runcState(staging.stateDir, containerIdFor('staging', 'other'))?.status).toBe('running');
  }, 90_000);
});
