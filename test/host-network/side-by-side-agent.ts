/**
 * What the side-by-side replace crash tests (replace-crash, replace-crash-gate) share: two root
 * filesystems serving v1 and v2 (busybox httpd), the agent script that runs v1 with a published
 * port and then replaces it as the test says, the agent's runtime and network opened again after
 * it was killed, and the removal of everything an agent state holds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkManager } from '../../host/network/index.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { repoRoot } from '../support/cli.js';
import { DIGEST } from '../host/support.js';

/** The addresses and bridge names a test file keeps to itself (test files run in parallel workers). */
export interface NetRange {
  subnetBase: string;
  bridgePrefix: string;
}

/** What the app answers on the host's `port` ("v1", "v2"), or why nothing did. */
export async function served(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) })).text()).trim();
  } catch (e) {
    return `unreachable (${(e as Error).message})`;
  }
}

/** `dir`/v1 and `dir`/v2: copies of the root filesystem made in `base` whose httpd serves "v1" and "v2". */
export function makeVersions(dir: string, base: string): void {
  for (const v of ['v1', 'v2']) {
    if (existsSync(join(dir, v))) continue;
    execFileSync('cp', ['-a', join(base, 'rootfs'), join(dir, v)]);
    mkdirSync(join(dir, v, 'www'));
    writeFileSync(join(dir, v, 'www', 'index.html'), `${v}\n`);
  }
}

export interface AgentScript {
  /** Where makeVersions put v1 and v2. */
  dir: string;
  stateDir: string;
  net: NetRange;
  appId: string;
  port: number;
  environment: string;
  /**
   * The script's code once v1 serves the port. It may use `rt`, `net`, `id`, `candidate` (the new
   * container's id), `writeFileSync`, and `replace(how)`: replaceSideBySide of `id` by v2 as
   * `candidate` with the same port, `how` giving the health check and the drain and grace times.
   */
  then: string;
}

/** Writes the agent script (it runs the transpiled code: build it first) at `path`. */
export function writeSideBySideAgent(path: string, o: AgentScript): void {
  const build = (p: string) => join(repoRoot, 'build', p);
  writeFileSync(path, `
import { writeFileSync } from 'node:fs';
import { RuncRuntime } from '${build('host/runtime/index.js')}';
import { NetworkManager } from '${build('host/network/index.js')}';
import { attachNetwork } from '${build('host/agent/network-hook.js')}';
import { buildRuntimePlan } from '${build('host/enforce/index.js')}';
import { collectFacts } from '${build('host/facts.js')}';
import { replaceSideBySide } from '${build('host/lifecycle/side-by-side.js')}';
const id = '${o.appId}';
const candidate = id + '.x';
const facts = await collectFacts();
const net = new NetworkManager({ stateDir: ${JSON.stringify(o.stateDir)}, subnetBase: '${o.net.subnetBase}', bridgePrefix: '${o.net.bridgePrefix}', slots: 2 });
const rt = await RuncRuntime.open({ stateDir: ${JSON.stringify(o.stateDir)}, unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
const plan = async (id, v) => (await buildRuntimePlan({ id, rootfs: ${JSON.stringify(o.dir)} + '/' + v, app: { name: 'web', imageDigest: '${DIGEST}' },
  runtime: { command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], user: '65534:65534', network: 'bridge' }, grants: { seccomp: 'required' }, cgroupsPath: '/cerro-torre/' + id }, facts)).config;
const ports = [{ host: ${o.port}, container: 8080, address: '127.0.0.1', protocol: 'tcp' }];
const c1 = await plan(id, 'v1');
await attachNetwork(net, c1, { containerId: id, environment: '${o.environment}', app: 'web', ports, egress: 'none' });
await rt.run(id, c1, { appName: 'web' });
const replace = async (how) => replaceSideBySide({ runtime: rt, network: net, id, candidate, config: await plan(candidate, 'v2'), create: { appName: 'web', imageDigest: '${DIGEST}' },
  attach: { environment: '${o.environment}', app: 'web', egress: 'none' }, ports, ...how });
${o.then}
`);
}

/** The containers runc lists under the agent's state directory, sorted. */
export function runcListed(stateDir: string): string[] {
  return execFileSync('runc', ['--root', join(stateDir, 'runc'), 'list', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
}

/** Kills container `id` behind the agent's back; its supervisor's `runc run` removes it from runc's list as it ends. */
export async function killWithRunc(stateDir: string, id: string): Promise<void> {
  execFileSync('runc', ['--root', join(stateDir, 'runc'), 'kill', id, 'KILL']);
  for (let i = 0; i < 100 && runcListed(stateDir).includes(id); i++) await new Promise((r) => setTimeout(r, 50));
}

/** An agent's runtime and network over its state directory. */
export interface OpenedAgent {
  stateDir: string;
  rt: RuncRuntime;
  net: NetworkManager;
}

/** Opens them as the restarted agent does (recovering them is the test's part). */
export async function openAgent(stateDir: string, range: NetRange): Promise<OpenedAgent> {
  const net = new NetworkManager({ stateDir, ...range, slots: 2 });
  const rt = await RuncRuntime.open({ stateDir, beforeStart: (id) => net.resume(id) });
  return { stateDir, rt, net };
}

/** The network's recover after recoverSideBySide, told by runc id what runs, what is stopped and what is gone. */
export async function recoverNetwork({ rt, net }: OpenedAgent): Promise<void> {
  const status = new Map((await rt.list()).map((c) => [c.runcId, c.status]));
  await net.recover((id) => (status.get(id) === 'running' ? 'running' : status.has(id) ? 'stopped' : 'gone'));
}

/** Removes every container (what runc lists too) and network artefact of the agent, and closes it. */
export async function removeAll({ stateDir, rt, net }: OpenedAgent): Promise<void> {
  for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
  for (const id of runcListed(stateDir)) {
    execFileSync('runc', ['--root', join(stateDir, 'runc'), 'delete', '--force', id]);
  }
  await net.recover(() => 'gone');
  rt.close();
  net.close();
}
