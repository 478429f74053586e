/**
 * A side-by-side replace (host/lifecycle/side-by-side.ts) cut short by `kill -9` of the agent while
 * the new container is being health-checked, with real runc containers and netavark; its check
 * never passes (HTTP 404). While no agent runs, the old container dies too. The restarted agent
 * (recoverSideBySide) must not hand the app to the unproven new container: it checks it again, it
 * fails, it is discarded, and the old container runs and serves the app's port again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
// Ranges no other test of this directory uses (they run in parallel workers).
const NET = { subnetBase: `10.${150 + (pid % 40)}`, bridgePrefix: `ctg${pid % 100000}k` };
const APP_ID = `ctgate-${pid}`;
const scope = { netnsPrefix: APP_ID, ...NET };

async function body(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) })).text()).trim();
  } catch (e) {
    return `unreachable (${(e as Error).message})`;
  }
}

describe('side-by-side replace: kill -9 of the agent during the new container\'s health check', () => {
  let dir: string;
  let base: string;
  let stateDir: string;

  beforeAll(async () => {
    requireHostTools();
    await findNetavark();
    dir = mkdtempSync(join(tmpdir(), 'ct-sbs-gate-'));
    stateDir = join(dir, 'state');
    ({ base } = await makeRootfs());
  });

  afterAll(async () => {
    if (stateDir && existsSync(stateDir)) {
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

  it('does not let a new container whose check never passed take the app over; the old one serves again', async () => {
    const port = await freePort();
    const marker = join(dir, 'gating');
    for (const v of ['v1', 'v2']) {
      execFileSync('cp', ['-a', join(base, 'rootfs'), join(dir, v)]);
      mkdirSync(join(dir, v, 'www'));
      writeFileSync(join(dir, v, 'www', 'index.html'), `${v}\n`);
    }
    const build = (p: string) => join(repoRoot, 'build', p);
    // The agent: v1 running with the port, then v2 beside it, checked on a path it does not serve
    // (failures do not count for 3 s): it is killed as soon as that check has begun.
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
await attachNetwork(net, c1, { containerId: '${APP_ID}', environment: 'gate', app: 'web', ports, egress: 'none' });
await rt.run('${APP_ID}', c1, { appName: 'web' });
setInterval(() => { if (rt.store.get('${APP_ID}.x')?.health === 'starting') writeFileSync(${JSON.stringify(marker)}, 'gating'); }, 20);
const hc = { type: 'http', port: 8080, path: '/missing', interval: 0.3, timeout: 1, retries: 3, start_period: 3 };
const r = await replaceSideBySide({ runtime: rt, network: net, id: '${APP_ID}', candidate: '${APP_ID}.x', config: await plan('${APP_ID}.x', 'v2'), create: { appName: 'web', imageDigest: 'sha256:${'ab'.repeat(32)}' },
  attach: { environment: 'gate', app: 'web', egress: 'none' }, ports, healthcheck: hc, drainMs: 500, maxDrainMs: 1000, graceMs: 1000 });
process.stderr.write('the replace ended before the agent was killed: ' + r.state);
`);
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 600 && !existsSync(marker) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
    expect([existsSync(marker), stderr]).toEqual([true, '']);
    // Mid-check: both run, the port still on the old one.
    expect(await body(port)).toBe('v1');
    expect(listArtifacts(scope).netns).toEqual([APP_ID, `${APP_ID}.x`]);

    // While no agent runs, the old container dies (its app crashed, an operator killed it).
    const runc = (...a: string[]) => execFileSync('runc', ['--root', join(stateDir, 'runc'), ...a], { encoding: 'utf8' });
    const listed = () => runc('list', '-q').split('\n').filter(Boolean).sort();
    runc('kill', APP_ID, 'KILL');
    for (let i = 0; i < 100 && listed().includes(APP_ID); i++) await new Promise((r) => setTimeout(r, 50));
    expect(listed()).toEqual([`${APP_ID}.x`]);

    // The restarted agent.
    const net = new NetworkManager({ stateDir, ...NET, slots: 2 });
    const rt = await RuncRuntime.open({ stateDir, beforeStart: (id) => net.resume(id) });
    try {
      await rt.recover();
      expect(await recoverSideBySide(rt, net)).toEqual([
        expect.stringMatching(new RegExp(`^${APP_ID}\\.x: HEALTHCHECK_FAILED after the agent restart \\(.+\\); discarded, ${APP_ID} started again \\(running\\)$`)),
      ]);
      const status = new Map((await rt.list()).map((c) => [c.runcId, c.status]));
      await net.recover((id) => (status.get(id) === 'running' ? 'running' : status.has(id) ? 'stopped' : 'gone'));
      // The app is the old container again (its own runc id), serving the port; nothing of the new one is left.
      expect((await rt.list()).map((c) => [c.id, c.runcId, c.status, c.replaces])).toEqual([[APP_ID, APP_ID, 'running', null]]);
      expect(listed()).toEqual([APP_ID]);
      expect(await body(port)).toBe('v1');
      const a = listArtifacts(scope);
      expect([a.netns, a.veths.length]).toEqual([[APP_ID], 1]);
      expect(a.rules.filter((r) => r.includes('--to-destination'))).toEqual([expect.stringContaining(`--to-destination ${net.attachment(APP_ID)!.address}:8080`)]);
      expect(existsSync(join(stateDir, 'containers', `${APP_ID}.x`))).toBe(false);
      expect(await recoverSideBySide(rt, net)).toEqual([]);
    } finally {
      for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      await net.recover(() => 'gone');
      rt.close();
      net.close();
    }
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 120_000);
});
