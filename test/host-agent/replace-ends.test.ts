/**
 * An in-place replace whose end goes wrong (LocalRunner, real runc, signed bundles):
 * - the new bundle passed its check but its assigned record cannot be written (ENOSPC, EIO: here a
 *   directory stands where the file goes): the running container keeps its root filesystem, the
 *   replace record is kept, and the next start finishes the replace;
 * - an agent killed between a rollback's `create` and `start` of the previous container left it
 *   `created`: the next start runs it again (it ran before), where nothing else would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { savePrevious } from '../../host/lifecycle/replace.js';
import { saveReplaceRecord } from '../../host/lifecycle/replace-record.js';
import { hostAction } from '../../host/local/commands.js';
import { PolicyStore } from '../../src/policy/store.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { agentFixture, assignmentFor, checkedSleeper, removeContainers, runcState, until, type AgentFixture, type BundleFile } from './fixture.js';

describe('in-place replace: when its end goes wrong', () => {
  let fx: AgentFixture;
  let facts: HostFacts;
  let slow: BundleFile;
  const states: string[] = [];

  beforeAll(async () => {
    fx = await agentFixture();
    facts = await collectFacts();
    // Healthy after 1 s: long enough to put the obstacle in place during its check.
    slow = await fx.signApp('slow', checkedSleeper('slow', 1, 30));
  }, 120_000);

  afterAll(async () => {
    await removeContainers(states);
    await fx?.cleanup();
  });

  const open = async (name: string) => {
    const stateDir = join(fx.dir, `state-${name}`);
    mkdirSync(stateDir);
    states.push(stateDir);
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    const policies = new PolicyStore([fx.policiesDir]);
    expect((await policies.reload()).ok).toBe(true);
    const runner = () => new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime });
    return { stateDir, runtime, runner };
  };
  const rootfsOf = (stateDir: string, id: string) => (JSON.parse(readFileSync(join(stateDir, 'containers', id, 'config.json'), 'utf8')) as { root: { path: string } }).root.path;
  const assigned = (stateDir: string, id: string) => (JSON.parse(readFileSync(join(stateDir, 'assigned', `${id}.json`), 'utf8')) as { bundleDigest: string; generation: number });

  /**
   * `app` runs generation 1, then is replaced in place by `slow` (generation 2) whose assigned
   * record cannot be written once its check has begun (a directory stands where the file goes,
   * removed again once the replace has answered).
   */
  const finishFails = async (app: string) => {
    const opened = await open(app);
    const { runner } = opened;
    const id = containerIdFor('production', app);
    expect(await runner().run(assignmentFor(fx.bundles.signed, { app, generation: 1 }), fx.bundles.signed.path)).toEqual({ state: 'running' });
    const live = runner();
    const out = await replaceFailingFinish(opened, live, app, 2);
    return { ...opened, id, live, out };
  };
  /** `slow` replaces `app` in place as generation `generation`; its assigned record cannot be written. */
  const replaceFailingFinish = async ({ stateDir, runtime }: { stateDir: string; runtime: RuncRuntime }, live: LocalRunner, app: string, generation: number) => {
    const id = containerIdFor('production', app);
    const replace = live.run(assignmentFor(slow, { app, generation }), slow.path);
    // During the new container's check (the old assigned record is gone by then).
    const rootfs = join(stateDir, 'rootfs', `${id}-${generation}`);
    await until('the check to begin', () => existsSync(join(stateDir, 'containers', id, 'config.json')) && rootfsOf(stateDir, id) === rootfs && runtime.store.get(id)?.health === 'starting');
    const blocker = join(stateDir, 'assigned', `${id}.json`);
    mkdirSync(join(blocker, 'x'), { recursive: true });
    const out = await replace;
    rmSync(blocker, { recursive: true });
    return out;
  };

  it('keeps the running new bundle and its record when the assigned record cannot be written; the next start finishes', async () => {
    const { stateDir, runtime, runner, id, out } = await finishFails('finish');
    try {
      expect(out).toMatchObject({ state: 'failed', code: 'IO_ERROR', message: expect.stringContaining('the new bundle runs and passed its check, but finishing the replace failed') });
      // What runs keeps its root filesystem, and the record to finish from is there.
      expect(runcState(stateDir, id)?.status).toBe('running');
      expect(rootfsOf(stateDir, id)).toBe(join(stateDir, 'rootfs', `${id}-2`));
      expect(existsSync(join(stateDir, 'rootfs', `${id}-2`, 'bin', 'busybox'))).toBe(true);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(true);

      // The host reboots before the agent starts again: the proven new bundle is stopped.
      await runtime.stop(id, 1000);
      expect(await runner().recoverReplaces()).toEqual([`${id}: the new bundle had passed its health check after the agent restart: it is the app (stopped)`]);
      expect((await runtime.state(id)).status).toBe('stopped');
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: slow.bundleDigest, generation: 2 });
      expect(existsSync(join(stateDir, 'rootfs', `${id}-1`))).toBe(false);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
    } finally {
      runtime.close();
    }
  }, 90_000);

  const appRootfs = (stateDir: string, id: string) => readdirSync(join(stateDir, 'rootfs')).filter((n) => n.startsWith(`${id}-`)).sort();
  /** The record went with the removed app, and the next start has nothing to bring back; nor is its image left on disk. */
  const staysRemoved = async (stateDir: string, runner: () => LocalRunner, id: string) => {
    expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
    expect(appRootfs(stateDir, id)).toEqual([]);
    expect(await runner().recoverReplaces()).toEqual([]);
    expect(runcState(stateDir, id)).toBeUndefined();
  };

  it('an app removed after such a failed finish stays removed: the record goes with it', async () => {
    const { stateDir, runtime, runner, id, live, out } = await finishFails('removed');
    try {
      expect(out).toMatchObject({ state: 'failed', code: 'IO_ERROR' });
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(true);
      expect(appRootfs(stateDir, id)).toEqual([`${id}-1`, `${id}-2`]);
      expect((await live.action(id, { action: 'remove' })).status).toBe('removed');
      await staysRemoved(stateDir, runner, id);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('without an agent, ct host refuses to act on such an app but for rm, which ends the replace for good', async () => {
    const { stateDir, runtime, runner, id, out } = await finishFails('hostrm');
    try {
      expect(out).toMatchObject({ state: 'failed', code: 'IO_ERROR' });
      const io = { out: () => undefined, err: () => undefined } as never;
      await expect(hostAction({ stateDir, id, action: 'stop' }, io)).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('start the agent') });
      expect(runcState(stateDir, id)?.status).toBe('running');
      expect(appRootfs(stateDir, id)).toEqual([`${id}-1`, `${id}-2`]);
      expect(await hostAction({ stateDir, id, action: 'remove' }, io)).toBe(0);
      await staysRemoved(stateDir, runner, id);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('a live agent tries a failed finish again, with growing delays, and refuses other actions on the app meanwhile', async () => {
    const { stateDir, runtime, id, live, out } = await finishFails('retry');
    try {
      expect(out).toMatchObject({ state: 'failed', code: 'IO_ERROR' });
      const record = join(stateDir, 'replacing', `${id}.json`);
      await expect(live.action(id, { action: 'stop' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('tries to end it at its next reconciliations') });
      // The disk still refuses. The first look only schedules a try 15 s on; that try fails, the
      // record stays, and the next waits twice as long.
      const blocker = join(stateDir, 'assigned', `${id}.json`);
      mkdirSync(join(blocker, 'x'), { recursive: true });
      const t0 = Date.now();
      expect(await live.retryUnfinished(t0)).toEqual([]);
      await expect(live.action(id, { action: 'stop' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringMatching(/tries to end it again in 1[0-5] s/) });
      expect(await live.retryUnfinished(t0 + 14_000)).toEqual([]);
      expect(await live.retryUnfinished(t0 + 15_000)).toEqual([expect.stringMatching(new RegExp(`^${id}: IO_ERROR: recovering the replace failed: .*; the record is kept$`))]);
      expect(existsSync(record)).toBe(true);
      expect(await live.retryUnfinished(t0 + 16_000)).toEqual([]);
      await expect(live.action(id, { action: 'restart' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringMatching(/tries to end it again in (29|30) s/) });
      expect(runcState(stateDir, id)?.status).toBe('running');
      // Once the disk takes it, the next try finishes the replace: the new bundle is the app.
      rmSync(blocker, { recursive: true });
      expect(await live.retryUnfinished(Date.now() + 31_000)).toEqual([`${id}: the new bundle had passed its health check when the agent tried again: it is the app`]);
      expect(existsSync(record)).toBe(false);
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: slow.bundleDigest, generation: 2 });
      expect(appRootfs(stateDir, id)).toEqual([`${id}-2`]);
      expect(await live.retryUnfinished(Date.now() + 3_600_000)).toEqual([]);
      expect((await live.action(id, { action: 'pause' })).status).toBe('paused');
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('a live agent leaves an ending that needs a check resumed to its next start, holding nothing; the kept record of a newer deploy is retried afresh', async () => {
    const { stateDir, runtime, id, live, out } = await finishFails('parked');
    try {
      expect(out).toMatchObject({ state: 'failed', code: 'IO_ERROR' });
      // As if its check had not passed: ending it would mean checking again.
      runtime.store.update(id, { health: 'starting' });
      const t0 = Date.now();
      expect(await live.retryUnfinished(t0)).toEqual([]);
      expect(await live.retryUnfinished(t0 + 15_000)).toEqual([`${id}: its new bundle's health check is resumed at the agent's next start; the record is kept`]);
      // Looked at again later, said once.
      expect(await live.retryUnfinished(t0 + 3_600_000)).toEqual([]);
      expect(live.held({ environment: 'production', app: 'parked' })).toBeUndefined();
      await expect(live.action(id, { action: 'stop' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('only the next start of the agent can resume the check') });
      // The new bundle stops meanwhile: its ending needs no check any more, and the next look ends
      // it (the previous bundle back).
      await runtime.stop(id, 1000);
      expect(await live.retryUnfinished(Date.now() + 7_200_000)).toEqual([expect.stringMatching(new RegExp(`^${id}: [A-Z_]+ when the agent tried again: .*rolled back`))]);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
      expect(runcState(stateDir, id)?.status).toBe('running');
      expect(assigned(stateDir, id)).toMatchObject({ generation: 1 });
      // A newer deploy replaces the app. Its own finish fails too: that record is retried afresh, not left parked.
      expect(await replaceFailingFinish({ stateDir, runtime }, live, 'parked', 3)).toMatchObject({ state: 'failed', code: 'IO_ERROR' });
      await expect(live.action(id, { action: 'stop' })).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('tries to end it at its next reconciliations') });
      const t1 = Date.now();
      expect(await live.retryUnfinished(t1)).toEqual([]);
      expect(await live.retryUnfinished(t1 + 15_000)).toEqual([`${id}: the new bundle had passed its health check when the agent tried again: it is the app`]);
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
      expect(assigned(stateDir, id)).toMatchObject({ generation: 3 });
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('a damaged record is left to the operator: no retries, no lines, the app can be acted on with or without an agent', async () => {
    const { stateDir, runtime, runner } = await open('damaged');
    try {
      const id = containerIdFor('production', 'damaged');
      const live = runner();
      expect(await live.run(assignmentFor(fx.bundles.signed, { app: 'damaged', generation: 1 }), fx.bundles.signed.path)).toEqual({ state: 'running' });
      mkdirSync(join(stateDir, 'replacing'), { recursive: true });
      writeFileSync(join(stateDir, 'replacing', `${id}.json`), '{"version": 1, "id": ');
      const t0 = Date.now();
      for (const at of [t0, t0 + 15_000, t0 + 60_000, t0 + 3_600_000]) expect(await live.retryUnfinished(at)).toEqual([]);
      expect((await live.action(id, { action: 'pause' })).status).toBe('paused');
      // Without an agent too: nothing would end that record.
      expect(await hostAction({ stateDir, id, action: 'resume' }, { out: () => undefined, err: () => undefined } as never)).toBe(0);
      expect(runcState(stateDir, id)?.status).toBe('running');
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(true);
    } finally {
      runtime.close();
    }
  }, 90_000);

  it('starts the previous container a rollback had created but not started', async () => {
    const { stateDir, runtime, runner } = await open('created');
    try {
      const id = containerIdFor('production', 'created');
      expect(await runner().run(assignmentFor(fx.bundles.signed, { app: 'created', generation: 1 }), fx.bundles.signed.path)).toEqual({ state: 'running' });
      // What an agent killed inside restorePrevious leaves: the record of the replace of generation
      // 1 by 2, and the previous container created again from its saved config, never started.
      const previous = (await savePrevious(runtime.store.get(id)!, join(stateDir, 'assigned', `${id}.json`)))!;
      await saveReplaceRecord(stateDir, { version: 1, id, rootfs: join(stateDir, 'rootfs', `${id}-2`), assigned: '{}\n', previous });
      await runtime.delete(id, { force: true, purge: true });
      await runtime.create(id, previous.config, { appName: 'created', imageDigest: fx.bundles.signed.imageDigest });
      // Created is the agent's own record (runc is only asked to run it at start).
      expect([(await runtime.state(id)).status, runcState(stateDir, id)]).toEqual(['created', undefined]);

      expect(await runner().recoverReplaces()).toEqual([`${id}: the replace had not begun or was rolled back; the previous container is kept (running)`]);
      expect(runcState(stateDir, id)?.status).toBe('running');
      expect(rootfsOf(stateDir, id)).toBe(join(stateDir, 'rootfs', `${id}-1`));
      expect(assigned(stateDir, id)).toMatchObject({ bundleDigest: fx.bundles.signed.bundleDigest, generation: 1 });
      expect(existsSync(join(stateDir, 'replacing', `${id}.json`))).toBe(false);
    } finally {
      runtime.close();
    }
  }, 90_000);
});
