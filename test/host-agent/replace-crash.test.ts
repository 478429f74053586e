/**
 * An in-place replace (LocalRunner, real runc, signed bundles) cut short by `kill -9` of the agent
 * while the new bundle is being health-checked: the old container is gone by then and
 * assigned/<id>.json too. The restarted agent (LocalRunner.recoverReplaces, as `ct host run` calls
 * it) resumes the check from replacing/<id>.json: a new bundle that fails it is removed and the
 * previous one runs again; one that passes it becomes the app, its assigned record written. A
 * damaged record is not guessed at: HOST_STATE_INVALID, the container left as it is.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { PolicyStore } from '../../src/policy/store.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { repoRoot } from '../support/cli.js';
import { runUntilMarker } from '../host/support.js';
import { channelServer, until } from '../server/channel/support.js';
import { agentFixture, assignmentFor, checkedSleeper, removeContainers, runcState, type AgentFixture, type BundleFile } from './fixture.js';

describe('in-place replace: kill -9 of the agent during the health check', () => {
  let fx: AgentFixture;
  let facts: HostFacts;
  let failing: BundleFile;
  let passing: BundleFile;
  let later: BundleFile;
  const states: string[] = [];

  beforeAll(async () => {
    fx = await agentFixture();
    facts = await collectFacts();
    // Never healthy (its start period outlasts the moment the agent is killed, and then some).
    failing = await fx.signApp('failing', checkedSleeper('failing', undefined, 3));
    // Healthy after 4 s: the agent is killed before that, the restarted one sees it pass.
    passing = await fx.signApp('passing', checkedSleeper('passing', 4, 30));
    // Healthy after 8 s: the restarted agent works on while the resumed check waits for it.
    later = await fx.signApp('later', checkedSleeper('later', 8, 30));
    // The agent script below runs the transpiled code.
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  }, 120_000);

  afterAll(async () => {
    await removeContainers(states);
    await fx?.cleanup();
  });

  const runner = async (stateDir: string, runtime: RuncRuntime) => {
    const policies = new PolicyStore([fx.policiesDir]);
    expect((await policies.reload()).ok).toBe(true);
    return new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime });
  };

  /**
   * An agent process deploys `signed` (generation 1), then `next` (generation 2) in place over it,
   * and is killed with SIGKILL as soon as the new container's check has begun.
   */
  async function killDuringGate(appName: string, next: BundleFile): Promise<{ stateDir: string; id: string }> {
    const stateDir = join(fx.dir, `state-${appName}`);
    mkdirSync(stateDir);
    states.push(stateDir);
    const id = containerIdFor('production', appName);
    const first = assignmentFor(fx.bundles.signed, { app: appName, generation: 1 });
    const second = assignmentFor(next, { app: appName, generation: 2 });
    const marker = join(stateDir, 'gating');
    const build = (p: string) => join(repoRoot, 'build', p);
    const script = join(stateDir, 'agent.mjs');
    writeFileSync(script, `
import { readFileSync, writeFileSync } from 'node:fs';
import { RuncRuntime } from '${build('host/runtime/runc.js')}';
import { LocalRunner } from '${build('host/agent/runner.js')}';
import { PolicyStore } from '${build('src/policy/store.js')}';
import { parseTrustStore, trustStoreDigest } from '${build('src/trust/store.js')}';
import { collectFacts } from '${build('host/facts.js')}';
const stateDir = ${JSON.stringify(stateDir)};
const store = parseTrustStore(readFileSync(${JSON.stringify(fx.trustStorePath)}, 'utf8'));
const policies = new PolicyStore([${JSON.stringify(fx.policiesDir)}]);
await policies.reload();
const facts = await collectFacts();
const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
const runner = new LocalRunner({ stateDir, trust: () => ({ store, storeDigest: trustStoreDigest(store) }), policies, facts: async () => facts, runtime });
const first = await runner.run(${JSON.stringify(first)}, ${JSON.stringify(fx.bundles.signed.path)});
if (first.state !== 'running') throw new Error('the first deploy: ' + JSON.stringify(first));
// The new container's check has begun (only a gate sets 'starting'; the first bundle has no check).
setInterval(() => { if (runtime.store.get(${JSON.stringify(id)})?.health === 'starting') writeFileSync(${JSON.stringify(marker)}, 'gating'); }, 20);
const out = await runner.run(${JSON.stringify(second)}, ${JSON.stringify(next.path)});
process.stderr.write('the replace ended before the agent was killed: ' + JSON.stringify(out));
`);
    const agent = await runUntilMarker(script, marker);
    await agent.kill();
    expect([existsSync(marker), agent.stderr]).toEqual([true, '']);
    // What the killed agent left: the new container running unchecked, the old one and its assigned record gone.
    expect(runcState(stateDir, id)?.status).toBe('running');
    expect(existsSync(join(stateDir, 'assigned', `${id}.json`))).toBe(false);
    return { stateDir, id };
  }

  const rootfsOf = (stateDir: string, id: string) => (JSON.parse(readFileSync(join(stateDir, 'containers', id, 'config.json'), 'utf8')) as { root: { path: string } }).root.path;
  const assigned = (stateDir: string, id: string) => (JSON.parse(readFileSync(join(stateDir, 'assigned', `${id}.json`), 'utf8')) as { bundleDigest: string; generation: number });

  it('puts the previous bundle back when the new one fails its resumed check', async () => {
    const { stateDir, id } = await killDuringGate('crash-fail', failing);
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      await runtime.recover();
      const lines = await (await runner(stateDir, runtime)).recoverReplaces();
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^${id}: HEALTHCHECK_FAILED after the agent restart: .*rolled back to ${fx.bundles.signed.bundleDigest} \\(running\\)$`))]);
      // runc runs the previous bundle again (generation 1's root filesystem), and it is the app.
      expect(runcState(stateDir, id)?.status).toBe('running');
      expect(rootfsOf(stateDir, id)).toBe(join(stateDir, 'rootfs', `${id}-1`));
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: fx.bundles.signed.bundleDigest, generation: 1 });
      expect(existsSync(join(stateDir, 'rootfs', `${id}-2`))).toBe(false);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
      // Nothing left to resume.
      expect(await (await runner(stateDir, runtime)).recoverReplaces()).toEqual([]);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('makes the new bundle the app when it passes its resumed check', async () => {
    const { stateDir, id } = await killDuringGate('crash-pass', passing);
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      await runtime.recover();
      const pid = runcState(stateDir, id)!.pid;
      const lines = await (await runner(stateDir, runtime)).recoverReplaces();
      expect(lines).toEqual([`${id}: the new bundle passed its health check after the agent restart: it is the app`]);
      // The very container the killed agent started (not restarted), with its assigned record.
      expect(runcState(stateDir, id)).toMatchObject({ status: 'running', pid });
      expect(rootfsOf(stateDir, id)).toBe(join(stateDir, 'rootfs', `${id}-2`));
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: passing.bundleDigest, generation: 2 });
      expect((await runtime.state(id)).health).toBe('healthy');
      expect(existsSync(join(stateDir, 'rootfs', `${id}-1`))).toBe(false);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('resumes the check without holding the agent up: it reports, deploys other apps, and runs the app\'s own deploy after', async () => {
    const { stateDir, id } = await killDuringGate('crash-later', later);
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    const server = await channelServer();
    try {
      await runtime.recover();
      const r = await runner(stateDir, runtime);
      // What the agent hands the runner, by app and generation.
      const runs: string[] = [];
      const run = r.run.bind(r);
      r.run = (a, path) => {
        runs.push(`${a.app}@${a.generation}`);
        return run(a, path);
      };
      const order: string[] = [];
      const recovery = await r.startRecovery();
      expect(recovery.now).toEqual([]);
      const ended = recovery.later.then((lines) => {
        order.push('recovered');
        return lines;
      });
      // The agent connects over the real channel while the check is pending (the bundle it is
      // assigned is already in its store: no registry here).
      const agentDir = server.stateDir();
      mkdirSync(join(agentDir, 'bundles'));
      copyFileSync(fx.bundles.signed.path, join(agentDir, 'bundles', `${fx.bundles.signed.bundleDigest.slice(7)}.ctp`));
      const agent = await server.agent(server.url, { stateDir: agentDir, runner: r, inventory: () => r.inventory() });
      try {
        await until('the agent to connect', () => agent.connected());
        // It reports the app being checked...
        expect((await r.inventory()).find((c) => c.id === id)).toMatchObject({ state: 'running', health: 'starting' });
        const assign = (app: string) => {
          const { generation: _, ...rest } = assignmentFor(fx.bundles.signed, { app, generation: 0 });
          return server.hub.assign(server.hostId, rest, 60_000);
        };
        // ...the server deploys the held app again, twice (two deployments): the newer waits for the
        // end, aside from the queue, and supersedes the older, which never runs...
        const superseded = assign('crash-later');
        const redeploy = assign('crash-later').then((st) => {
          order.push('redeployed');
          return st;
        });
        expect(await superseded).toMatchObject({ state: 'refused', code: 'SUPERSEDED', message: expect.stringContaining('was superseded by') });
        // ...and another app, which runs meanwhile...
        expect(await assign('crash-other')).toMatchObject({ state: 'running' });
        expect(runcState(stateDir, containerIdFor('production', 'crash-other'))?.status).toBe('running');
        expect(order).toEqual([]);
        // ...while the held app takes no lifecycle action.
        await expect(r.action(id, { action: 'stop' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY' });
        expect(await ended).toEqual([`${id}: the new bundle passed its health check after the agent restart: it is the app`]);
        // Then the app's own deploy runs: the server's bundle replaces the one the check proved.
        const last = await redeploy;
        expect(last).toMatchObject({ state: 'running' });
        expect(order).toEqual(['recovered', 'redeployed']);
        // The older deployment of the held app never reached the runner; the newer ran once, last.
        expect(runs).toEqual([expect.stringMatching(/^crash-other@/), `crash-later@${(last as { generation: number }).generation}`]);
        expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: fx.bundles.signed.bundleDigest });
        expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
      } finally {
        await agent.stop();
      }
    } finally {
      await server.close();
      runtime.close();
    }
  }, 120_000);

  it('an agent stopping while the check is pending leaves that replace, record and all, to the next start', async () => {
    const { stateDir, id } = await killDuringGate('crash-stop', later);
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      await runtime.recover();
      const pid = runcState(stateDir, id)!.pid;
      const r = await runner(stateDir, runtime);
      const recovery = await r.startRecovery();
      await r.close();
      expect(await recovery.later).toEqual([`${id}: the agent stopped before the replace ended; it is resumed at the next start`]);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(true);
      expect(existsSync(join(stateDir, 'assigned', `${id}.json`))).toBe(false);
      expect(existsSync(join(stateDir, 'rootfs', `${id}-1`))).toBe(true);
      // The check stopped with the agent (no verdict recorded), and the next start resumes it.
      expect(runtime.store.get(id)?.health).toBe('starting');
      expect(await (await runner(stateDir, runtime)).recoverReplaces()).toEqual([`${id}: the new bundle passed its health check after the agent restart: it is the app`]);
      expect(runcState(stateDir, id)).toMatchObject({ status: 'running', pid });
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: later.bundleDigest, generation: 2 });
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('keeps the record when the previous bundle cannot be put back, and says so with a stable code', async () => {
    const { stateDir, id } = await killDuringGate('crash-noback', failing);
    // What the rollback needs is gone (an operator's clean-up, a disk error): it cannot succeed.
    rmSync(join(stateDir, 'rootfs', `${id}-1`), { recursive: true, force: true });
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      await runtime.recover();
      const lines = await (await runner(stateDir, runtime)).recoverReplaces();
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^${id}: RUNTIME_FAILED: recovering the replace failed: HEALTHCHECK_FAILED after the agent restart: .*rolling back failed: .*; the record is kept$`))]);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(true);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('leaves the container as it is and says HOST_STATE_INVALID when the record is damaged', async () => {
    const { stateDir, id } = await killDuringGate('crash-damaged', failing);
    const record = join(stateDir, 'replacing', `${id}.json`);
    writeFileSync(record, readFileSync(record, 'utf8').slice(0, 100));
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      await runtime.recover();
      const pid = runcState(stateDir, id)!.pid;
      const lines = await (await runner(stateDir, runtime)).recoverReplaces();
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^${id}: HOST_STATE_INVALID: `))]);
      expect(runcState(stateDir, id)).toMatchObject({ status: 'running', pid });
      expect(existsSync(record)).toBe(true);
    } finally {
      runtime.close();
    }
  }, 90_000);
});
