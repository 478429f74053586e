/**
 * A side-by-side replace (host/lifecycle/side-by-side.ts) cut short by `kill -9` of the agent, with
 * real runc containers and netavark: the agent process is killed while it drains the old container
 * (the published port has just moved to the new one, the old one still runs). The restarted agent
 * (recoverSideBySide, then the network's recover) ends with exactly one container serving the
 * app's port, the old one (it never stopped), and no netns, veth or firewall rule of the discarded
 * new one left; after the last container goes, nothing at all. When the old container died too
 * while no agent ran, the new one takes the app over instead: the port stays on it, the old
 * container's netns, veth and rule go.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { recoverSideBySide } from '../../host/lifecycle/side-by-side.js';
import { freePort } from '../support/registry.js';
import { repoRoot } from '../support/cli.js';
import { makeRootfs, requireHostTools } from '../host/support.js';
import { listArtifacts } from './artifacts.js';

const pid = process.pid;
const NET = { subnetBase: `10.${100 + (pid % 40)}`, bridgePrefix: `cts${pid % 100000}k` };
const scope = { netnsPrefix: `ctsbs-${pid}`, ...NET };

async function body(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) })).text()).trim();
  } catch (e) {
    return `unreachable (${(e as Error).message})`;
  }
}

describe('side-by-side replace: kill -9 of the agent mid-swap', () => {
  let dir: string;
  let base: string;

  beforeAll(async () => {
    requireHostTools();
    await findNetavark();
    dir = mkdtempSync(join(tmpdir(), 'ct-sbs-crash-'));
    ({ base } = await makeRootfs());
  });

  // Every agent state made here: whatever a failing test left running is removed before the files go.
  const states: string[] = [];
  afterAll(async () => {
    for (const stateDir of states) {
      const net = new NetworkManager({ stateDir, ...NET, slots: 2 });
      const rt = await RuncRuntime.open({ stateDir });
      for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      for (const id of execFileSync('runc', ['--root', join(stateDir, 'runc'), 'list', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
        execFileSync('runc', ['--root', join(stateDir, 'runc'), 'delete', '--force', id]);
      }
      await net.recover(() => 'gone');
      rt.close();
      net.close();
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  });

  /**
   * Runs the agent until it drains the old container (the port on the new one, both running) and
   * kills it with -9 there. Returns what the restarted agent needs.
   */
  async function killMidSwap(APP_ID: string): Promise<{ stateDir: string; port: number; marker: string }> {
    const stateDir = join(dir, `state-${APP_ID}`);
    states.push(stateDir);
    const port = await freePort();
    const marker = join(dir, `draining-${APP_ID}`);
    // Two root filesystems serving v1 and v2 (busybox httpd).
    for (const v of ['v1', 'v2']) {
      if (existsSync(join(dir, v))) continue;
      execFileSync('cp', ['-a', join(base, 'rootfs'), join(dir, v)]);
      mkdirSync(join(dir, v, 'www'));
      writeFileSync(join(dir, v, 'www', 'index.html'), `${v}\n`);
    }
    const build = (p: string) => join(repoRoot, 'build', p);
    // The agent: v1 running with the port, then v2 beside it, healthy, the port moved; it is
    // killed while it drains v1 (drainMs is long here so that the moment can be caught).
    const script = join(dir, 'agent.mjs');
    writeFileSync(script, `
import { writeFileSync } from 'node:fs';
import { RuncRuntime } from '${build('host/runtime/index.js')}';
import { NetworkManager } from '${build('host/network/index.js')}';
import { attachNetwork } from '${build('host/agent/network-hook.js')}';
import { buildRuntimePlan } from '${build('host/enforce/index.js')}';
import { collectFacts } from '${build('host/facts.js')}';
import { replaceSideBySide } from '${build('host/lifecycle/side-by-side.js')}';
const facts = await collectFacts();
const net = new NetworkManager({ stateDir: ${JSON.stringify(stateDir)}, subnetBase: '${NET.subnetBase}', bridgePrefix: '${NET.bridgePrefix}', slots: 2 });
const rt = await RuncRuntime.open({ stateDir: ${JSON.stringify(stateDir)}, unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
const plan = async (id, v) => (await buildRuntimePlan({ id, rootfs: ${JSON.stringify(dir)} + '/' + v, app: { name: 'web', imageDigest: 'sha256:${'ab'.repeat(32)}' },
  runtime: { command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], user: '65534:65534', network: 'bridge' }, grants: { seccomp: 'required' }, cgroupsPath: '/cerro-torre/' + id }, facts)).config;
const ports = [{ host: ${port}, container: 8080, address: '127.0.0.1', protocol: 'tcp' }];
const c1 = await plan('${APP_ID}', 'v1');
await attachNetwork(net, c1, { containerId: '${APP_ID}', environment: 'crash', app: 'web', ports, egress: 'none' });
await rt.run('${APP_ID}', c1, { appName: 'web' });
writeFileSync(${JSON.stringify(`${marker}.v1`)}, 'up');
const hc = { type: 'http', port: 8080, path: '/', interval: 0.2, timeout: 1, retries: 10, start_period: 0 };
await replaceSideBySide({ runtime: rt, network: net, id: '${APP_ID}', candidate: '${APP_ID}.x', config: await plan('${APP_ID}.x', 'v2'), create: { appName: 'web', imageDigest: 'sha256:${'ab'.repeat(32)}' },
  attach: { environment: 'crash', app: 'web', egress: 'none' }, ports, healthcheck: hc, drainMs: 120000, maxDrainMs: 120000, graceMs: 1000,
  onSwitched: () => writeFileSync(${JSON.stringify(marker)}, 'switched') });
`);
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 600 && !existsSync(marker) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    expect([existsSync(marker), stderr]).toEqual([true, '']);
    // Mid-swap: the port answers from the new container, both run, each in its own netns.
    expect(await body(port)).toBe('v2');
    expect(listArtifacts(scope).netns).toEqual([APP_ID, `${APP_ID}.x`]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    return { stateDir, port, marker };
  }

  it('ends with the old container serving alone and nothing of the new one left', async () => {
    const APP_ID = `ctsbs-${pid}`;
    const { stateDir, port, marker } = await killMidSwap(APP_ID);

    // The restarted agent.
    const net = new NetworkManager({ stateDir, ...NET, slots: 2 });
    const rt = await RuncRuntime.open({ stateDir, beforeStart: (id) => net.resume(id) });
    try {
      await rt.recover();
      expect(await recoverSideBySide(rt, net)).toEqual([`${APP_ID}.x: discarded, ${APP_ID} keeps serving`]);
      const status = new Map((await rt.list()).map((c) => [c.runcId, c.status]));
      await net.recover((id) => (status.get(id) === 'running' ? 'running' : status.has(id) ? 'stopped' : 'gone'));
      // Exactly one container, the old one, serving the port; nothing of the new one left.
      expect((await rt.list()).map((c) => [c.id, c.status, c.replaces])).toEqual([[APP_ID, 'running', null]]);
      expect(await body(port)).toBe('v1');
      const a = listArtifacts(scope);
      expect([a.netns, a.veths.length]).toEqual([[APP_ID], 1]);
      const dnat = a.rules.filter((r) => r.includes('--to-destination'));
      expect(dnat).toEqual([expect.stringContaining(`--to-destination ${net.attachment(APP_ID)!.address}:8080`)]);
      expect(existsSync(join(stateDir, 'containers', `${APP_ID}.x`))).toBe(false);
      // A second recovery has nothing to do.
      expect(await recoverSideBySide(rt, net)).toEqual([]);
    } finally {
      for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      await net.recover(() => 'gone');
      rt.close();
      net.close();
    }
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    expect(readFileSync(`${marker}.v1`, 'utf8')).toBe('up');
  }, 120_000);

  it('hands the app to the new container when the old one had stopped while the agent was down', async () => {
    const APP_ID = `ctsbs-${pid}b`;
    const { stateDir, port } = await killMidSwap(APP_ID);
    // While no agent runs, the old container dies (its app crashed, an operator killed it).
    const runc = (...a: string[]) => execFileSync('runc', ['--root', join(stateDir, 'runc'), ...a], { encoding: 'utf8' });
    const listed = () => runc('list', '-q').split('\n').filter(Boolean).sort();
    runc('kill', APP_ID, 'KILL');
    // Its supervisor's `runc run` removes it from runc's list as it ends.
    for (let i = 0; i < 100 && listed().includes(APP_ID); i++) await new Promise((r) => setTimeout(r, 50));
    expect(listed()).toEqual([`${APP_ID}.x`]);

    const net = new NetworkManager({ stateDir, ...NET, slots: 2 });
    const rt = await RuncRuntime.open({ stateDir, beforeStart: (id) => net.resume(id) });
    try {
      await rt.recover();
      expect(await recoverSideBySide(rt, net)).toEqual([`${APP_ID}.x: took over ${APP_ID}`]);
      const status = new Map((await rt.list()).map((c) => [c.runcId, c.status]));
      await net.recover((id) => (status.get(id) === 'running' ? 'running' : status.has(id) ? 'stopped' : 'gone'));
      // One container under the app's id, the new one (runc knows it as .x), serving the port.
      expect((await rt.list()).map((c) => [c.id, c.runcId, c.status, c.replaces])).toEqual([[APP_ID, `${APP_ID}.x`, 'running', null]]);
      expect(await body(port)).toBe('v2');
      // Nothing of the old one left: its netns, veth and rule went with it.
      const a = listArtifacts({ ...scope, netnsPrefix: APP_ID });
      expect([a.netns, a.veths.length]).toEqual([[`${APP_ID}.x`], 1]);
      expect(a.rules.filter((r) => r.includes('--to-destination'))).toEqual([expect.stringContaining(`--to-destination ${net.attachment(`${APP_ID}.x`)!.address}:8080`)]);
      expect(listed()).toEqual([`${APP_ID}.x`]);
      expect(await recoverSideBySide(rt, net)).toEqual([]);
    } finally {
      for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      await net.recover(() => 'gone');
      rt.close();
      net.close();
    }
    expect(listArtifacts({ ...scope, netnsPrefix: APP_ID })).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 120_000);
});
