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
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { PolicyStore } from '../../src/policy/store.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { repoRoot } from '../support/cli.js';
import { runUntilMarker } from '../host/support.js';
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

  it('resumes the check without holding the agent up: it reports, deploys other apps, and holds only that app', async () => {
    const { stateDir, id } = await killDuringGate('crash-later', later);
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      await runtime.recover();
      const r = await runner(stateDir, runtime);
      const order: string[] = [];
      const recovery = await r.startRecovery();
      expect(recovery.now).toEqual([]);
      const ended = recovery.later.then((lines) => {
        order.push('recovered');
        return lines;
      });
      // The check is pending: the inventory answers (what the agent sends the server on connect)...
      expect((await r.inventory()).find((c) => c.id === id)).toMatchObject({ state: 'running', health: 'starting' });
      // ...another app deploys...
      const other = containerIdFor('production', 'crash-other');
      expect(await r.run(assignmentFor(fx.bundles.signed, { app: 'crash-other', generation: 3 }), fx.bundles.signed.path)).toEqual({ state: 'running' });
      expect(runcState(stateDir, other)?.status).toBe('running');
      expect(order).toEqual([]);
      // ...while the app in the replace is held: no lifecycle action, and a deploy of it is refused
      // at once (the agent runs assignments one at a time: waiting would hold every other app's).
      await expect(r.action(id, { action: 'stop' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY' });
      expect(await r.run(assignmentFor(fx.bundles.signed, { app: 'crash-later', generation: 4 }), fx.bundles.signed.path)).toMatchObject({ state: 'refused', code: 'CONTAINER_BUSY' });
      expect(order).toEqual([]);
      expect(await ended).toEqual([`${id}: the new bundle passed its health check after the agent restart: it is the app`]);
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: later.bundleDigest, generation: 2 });
      // Once it has ended, the app deploys again like any other.
      expect(await r.run(assignmentFor(fx.bundles.signed, { app: 'crash-later', generation: 5 }), fx.bundles.signed.path)).toEqual({ state: 'running' });
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: fx.bundles.signed.bundleDigest, generation: 5 });
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
    } finally {
      runtime.close();
    }
  }, 90_000);

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
