/**
 * Issue 11, health-check faults under real runc: a check that hangs is killed at its timeout and
 * counts as failed (the gate ends, bounded); a container that exits during its start period is
 * unhealthy at once, with its exit code; an exec check that passes makes it healthy.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rm } from 'node:fs/promises';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { waitHealthy } from '../../host/health/gate.js';
import type { HealthcheckSpec } from '../../src/bundle/runtime-extras.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';

let facts: HostFacts;
let base: string;
let rootfs: string;
let rt: RuncRuntime;
let seq = 0;

async function start(command: string[]): Promise<string> {
  const id = `hc-${process.pid}-${++seq}`;
  const plan = await buildRuntimePlan({ id, rootfs, app: { name: 'hc', imageDigest: DIGEST }, runtime: { command }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` }, facts);
  await rt.run(id, plan.config);
  return id;
}

const check = (over: Partial<HealthcheckSpec>): HealthcheckSpec => ({ type: 'exec', command: ['/bin/true'], interval: 0.2, timeout: 0.5, retries: 2, start_period: 0, ...over });

beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  ({ base, rootfs } = await makeRootfs());
  rt = await RuncRuntime.open({ stateDir: `${base}/state`, unifiedCgroupMount: facts.cgroup.unifiedMount });
});

afterAll(async () => {
  for (const c of (await rt?.list()) ?? []) await rt.delete(c.id, { force: true }).catch(() => undefined);
  rt?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('health checks', () => {
  it('marks a container healthy when its exec check passes', async () => {
    const id = await start(['/bin/sleep', '60']);
    expect(await waitHealthy(rt, id, check({}))).toMatchObject({ health: 'healthy' });
    expect((await rt.state(id)).health).toBe('healthy');
  }, 30000);

  it('kills a hanging check at its timeout and ends unhealthy, bounded', async () => {
    const id = await start(['/bin/sleep', '60']);
    // The check would hang for 600 s: the gate must end within this test's 30 s.
    const r = await waitHealthy(rt, id, check({ command: ['/bin/sleep', '600'], timeout: 0.5, retries: 2 }));
    expect(r.health).toBe('unhealthy');
    expect(r.detail).toContain('timed out');
    expect((await rt.state(id)).health).toBe('unhealthy');
  }, 30000);

  it('an exec check that prints without end is killed and fails, the agent unharmed; one that prints a page passes', async () => {
    const id = await start(['/bin/sleep', '60']);
    // `yes` grew one string until V8 threw in the stream handler and the agent process exited.
    const r = await waitHealthy(rt, id, check({ command: ['/bin/busybox', 'yes'], timeout: 20, retries: 1 }));
    expect(r.health).toBe('unhealthy');
    expect(r.detail).toContain('printed more than 64 MiB');
    // ~110 KB of output then exit 0 (`curl -f http://…/` printing a page): healthy, its end kept.
    const page = ['/bin/sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo "line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done'];
    const out = await rt.exec(id, page, 10_000);
    expect(out).toMatchObject({ code: 0, overflowed: false, timedOut: false });
    expect(out.output.length).toBe(4096);
    expect(out.output.endsWith('line-1999-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n')).toBe(true);
    expect(await waitHealthy(rt, id, check({ command: page, timeout: 10 }))).toMatchObject({ health: 'healthy' });
  }, 60000);

  it('reports a container that exits during its start period as unhealthy at once, with its exit code', async () => {
    const id = await start(['/bin/sh', '-c', 'sleep 0.3; exit 3']);
    const r = await waitHealthy(rt, id, check({ command: ['/bin/false'], start_period: 30 }));
    expect(r).toMatchObject({ health: 'unhealthy', exited: { exitCode: 3, exitReason: null } });
    expect(r.detail).toContain('during its start period');
  }, 30000);
});
